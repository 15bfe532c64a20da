-- Interop test app: namespace connect, refusal, disconnect and close (docs/protocol.md §7).
-- Every lifecycle event is noted in `history` (neffos.shared: a note and the request reading it
-- may run on different workers); the `history` event returns the notes about one connection ID
-- (the request body).
local neffos = require "neffos"

local history = require "shared_log" ("namespaces")
local function note(fmt, ...) history.add(fmt:format(...)) end

local function flags(msg)
  return ("forced=%s local=%s"):format(tostring(msg.is_forced == true), tostring(msg.is_local == true))
end

return neffos.server {
  endpoint = "/echo",
  id = function(req)
    return req.headers["x-username"]
  end,
  on_disconnect = function(conn)
    note("%s on_disconnect", conn.id)
  end,
  namespaces = {
    default = {
      [neffos.OnNamespaceConnect] = function(ns, msg)
        note("%s connect %s", ns.id, msg.namespace)
      end,
      [neffos.OnNamespaceConnected] = function(ns, msg)
        note("%s connected %s", ns.id, msg.namespace)
        ns:emit("welcome", "welcome " .. ns.id)
      end,
      [neffos.OnNamespaceDisconnect] = function(ns, msg)
        note("%s disconnect %s %s", ns.id, msg.namespace, flags(msg))
      end,
      echo = function(ns, msg)
        return "echo back: " .. msg.body
      end,
      history = function(ns, msg)
        local mine = {}
        for _, h in ipairs(history.list()) do
          if h:sub(1, #msg.body + 1) == msg.body .. " " then mine[#mine + 1] = h end
        end
        return table.concat(mine, "\n")
      end,
    },
    private = {
      [neffos.OnNamespaceConnect] = function(ns, msg)
        return nil, "private: access denied"
      end,
      echo = function(ns, msg)
        return "private echo: " .. msg.body
      end,
    },
  },
}
