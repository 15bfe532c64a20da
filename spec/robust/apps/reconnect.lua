-- Reconnection across a restart (spec/robust/reconnect.test.mjs): a handler that holds the
-- drain open until its client answers, and a broadcast to a room.
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    chat = {
      -- Waits for the client's answer to "release": while it waits, a drain cannot end.
      hold = function(ns, msg)
        local answer, err = ns:ask("release", "")
        return answer and "released" or ("not released: " .. tostring(err))
      end,
      -- The worker serving this connection (a broadcast returns that worker's receivers).
      worker = function() return tostring(neffos.worker.id) end,
      -- Broadcasts the body as "news" to room "r" of every connection in "chat".
      say = function(ns, msg)
        return tostring(neffos.servers()["/echo"]:broadcast { namespace = "chat", room = "r", event = "news", body = msg.body })
      end,
    },
  },
}
