-- Parity test app: broadcasting (docs/protocol.md §10; docs/lua-api.md `server:broadcast`).
local neffos = require "neffos"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    bc = {
      -- the worker serving this connection: a broadcast returns the receivers on the sender's
      -- worker (docs/lua-api.md, "Workers"), so the tests count by worker
      worker = function() return tostring(neffos.worker.id) end,
      -- to the whole namespace, the sender included; returns the local receiver count
      all = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "bc", event = "all", body = msg.body })
      end,
      -- shout to all but the sender, with `except` given three ways
      shout_conn = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "bc", event = "shout", body = ns.id .. ": " .. msg.body, except = ns.conn })
      end,
      shout_ns = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "bc", event = "shout", body = ns.id .. ": " .. msg.body, except = ns })
      end,
      shout_id = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "bc", event = "shout", body = ns.id .. ": " .. msg.body, except = ns.id })
      end,
      shout_others = function(ns, msg)
        ns:broadcast("shout", ns.id .. ": " .. msg.body, { except = ns })
      end,
      -- a client emit that is relayed to all but the sender (no reply: 1,000 emits stay one-way)
      relay = function(ns, msg)
        ns.server:broadcast { namespace = "bc", room = msg.room, event = "relay", body = msg.body, except = ns.conn }
      end,
      -- whisper "to|text" to one ID
      whisper = function(ns, msg)
        local to, text = split(msg.body)
        return tostring(ns.server:broadcast { namespace = "bc", to = to, event = "whisper", body = ns.id .. ": " .. text })
      end,
      -- to one room: "room|text"; binary when the request was binary
      roomcast = function(ns, msg)
        local room, text = split(msg.body)
        return tostring(ns.server:broadcast { namespace = "bc", room = room, event = "roomcast", body = text, binary = msg.binary })
      end,
      -- to one ID, but excepted as well: nobody
      to_and_except = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "bc", to = msg.body, except = msg.body, event = "whisper", body = "never" })
      end,
      -- one handler call that broadcasts N times in a loop: "room|N"
      burst = function(ns, msg)
        local room, n = split(msg.body)
        local total = 0
        for i = 1, tonumber(n) do
          total = total + ns.server:broadcast { namespace = "bc", room = room, event = "n", body = tostring(i) }
        end
        return tostring(total)
      end,
      join = function(ns, msg)
        local room, err = ns:join_room(msg.body)
        if not room then return nil, err end
        return "ok"
      end,
    },
    other = {
      all = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "other", event = "all", body = msg.body })
      end,
    },
  },
}
