-- Test app of spec/workers/causality: a join announced to the room's other members from
-- OnRoomJoined, which runs after the join reply (docs/protocol.md §7.6), as the chat example does.
local neffos = require "neffos"
return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    chat = {
      worker = function() return tostring(neffos.worker.id) end,
      [neffos.OnRoomJoined] = function(ns, msg)
        ns.server:broadcast { namespace = "chat", room = msg.room, event = "notify",
                              body = ns.id .. " joined " .. msg.room, except = ns.conn }
      end,
    },
  },
}
