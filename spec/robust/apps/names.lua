-- Name bounds (spec/robust/names.test.mjs): server-forced actions and broadcasts with names the
-- server refuses. Each handler takes a length in msg.body and answers what the call returned.
local neffos = require "neffos"

local function result(v, err)
  if v == nil then return "nil, " .. tostring(err) end
  return "ok"
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      echo = function(ns, msg) return msg.body end,
      force_join = function(ns, msg)
        return result(ns:join_room(string.rep("r", tonumber(msg.body))))
      end,
      force_connect = function(ns, msg)
        return result(ns.conn:connect(string.rep("n", tonumber(msg.body))))
      end,
      broadcast_long = function(ns, msg)
        return result(ns:broadcast(string.rep("e", tonumber(msg.body)), "x"))
      end,
      server_ask_long = function(ns, msg)
        return result(ns.server:ask { to = ns.conn.id, namespace = "v1", event = string.rep("e", tonumber(msg.body)) })
      end,
      server_broadcast_long = function(ns, msg)
        return result(ns.server:broadcast { namespace = "v1", room = string.rep("r", tonumber(msg.body)), event = "x" })
      end,
    },
  },
}
