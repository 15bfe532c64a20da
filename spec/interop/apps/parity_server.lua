-- Parity test app: the server-level Lua API (docs/lua-api.md "The server"): count,
-- connections, get, members, endpoint, and timers (after, every) that broadcast.
local neffos = require "neffos"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

local function sorted(list)
  table.sort(list)
  return table.concat(list, ",")
end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    default = {
      count = function(ns) return tostring(ns.server:count()) end,
      -- the Server.Do equivalent: every open connection, with its namespaces
      ids = function(ns)
        local ids = {}
        for _, conn in ipairs(ns.server:connections()) do ids[#ids + 1] = conn.id end
        return sorted(ids)
      end,
      get = function(ns, msg)
        local conn = ns.server:get(msg.body)
        if not conn then return nil, "no connection " .. msg.body end
        local names = {}
        for _, n in ipairs(conn:namespaces()) do names[#names + 1] = n.namespace end
        return conn.id .. " in " .. sorted(names) .. " closed=" .. tostring(conn:is_closed())
      end,
      -- "ns|room" (room optional)
      members = function(ns, msg)
        local name, room = split(msg.body)
        local ids = {}
        for i, member in ipairs(ns.server:members(name, room ~= "" and room or nil)) do ids[i] = member.id end
        return sorted(ids)
      end,
      endpoint = function(ns) return ns.server.endpoint .. " " .. tostring(ns.server == neffos.servers()["/echo"]) end,
      -- "n|seconds": a timer that broadcasts `tick` n times to the namespace, then cancels itself
      ticks = function(ns, msg)
        local n, every = split(msg.body)
        local server, i, timer = ns.server, 0, nil
        timer = neffos.every(tonumber(every), function()
          i = i + 1
          server:broadcast { namespace = "default", room = "ticks", event = "tick", body = tostring(i) }
          if i >= tonumber(n) then timer:cancel() end
        end)
        return "started"
      end,
      -- neffos.after that broadcasts once; a cancelled one never fires
      later = function(ns, msg)
        local server = ns.server
        neffos.after(0.1, function() server:broadcast { namespace = "default", room = "ticks", event = "later", body = msg.body } end)
        local never = neffos.after(0.05, function() server:broadcast { namespace = "default", room = "ticks", event = "later", body = "cancelled!" } end)
        never:cancel()
        return "scheduled"
      end,
    },
    other = {},
  },
}
