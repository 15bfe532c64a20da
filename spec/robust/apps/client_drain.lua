-- spec/robust/client_drain.test.mjs: handlers waiting for the Lua client (neffos.dial, an ask of a
-- dialled connection) when a SIGTERM's grace period ends. Each holds a <close> variable, which
-- logs how it ended.
local neffos = require "neffos"

local function closing(what)
  return setmetatable({}, { __close = function(_, err)
    neffos.log.info("%s: closed (%s)", what, tostring(err))
  end })
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      -- "url": a dial whose handshake never comes (no timeout)
      dial_hang = function(_, msg)
        local _ <close> = closing("dial_hang")
        neffos.log.info("dial_hang: dialing")
        local conn, err = neffos.dial(msg.body, { v1 = {} })
        return tostring(conn) .. " " .. tostring(err)
      end,
      -- "url": a dial, then an ask its server answers after 30 s
      ask_hang = function(_, msg)
        local _ <close> = closing("ask_hang")
        local conn, err = neffos.dial(msg.body, { v1 = {} })
        if not conn then return nil, "dial: " .. tostring(err) end
        local ns, cerr = conn:connect("v1")
        if not ns then return nil, "connect: " .. tostring(cerr) end
        neffos.log.info("ask_hang: asking")
        local reply, aerr = ns:ask("nap", "30")
        return tostring(reply) .. " " .. tostring(aerr)
      end,
      -- "url|n": a dial, then n asks where code cannot wait (a table.sort comparator, a C
      -- call): each raises; what the first said
      ask_unwaitable = function(_, msg)
        local url, n = msg.body:match("^(.-)|(%d+)$")
        local conn, err = neffos.dial(url, { v1 = {} })
        if not conn then return nil, "dial: " .. tostring(err) end
        local ns, cerr = conn:connect("v1")
        if not ns then return nil, "connect: " .. tostring(cerr) end
        local first
        for _ = 1, tonumber(n) do
          local ok, e = pcall(table.sort, { 1, 2 }, function() ns:ask("nap", "0") return false end)
          first = first or (ok and "no error" or tostring(e))
        end
        conn:close()
        return first
      end,
      -- "seconds": the upstream's slow answer
      nap = function(_, msg)
        neffos.sleep(tonumber(msg.body))
        return "napped"
      end,
    },
  },
}
