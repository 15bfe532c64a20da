-- Interop test app for permessage-deflate (spec/interop/deflate.test.mjs): "echo" answers with
-- the body; "shout" broadcasts the body as "chat" to everyone in v1 but the sender; "worker" names
-- the worker serving the connection (a broadcast counts and compresses per worker).
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      echo = function(ns, msg)
        return msg.body
      end,
      worker = function() return tostring(neffos.worker.id) end,
      shout = function(ns, msg)
        return tostring(ns.server:broadcast { namespace = "v1", event = "chat", body = msg.body, except = ns })
      end,
    },
  },
}
