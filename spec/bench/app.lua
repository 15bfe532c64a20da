-- spec/bench/app.lua - the app neffos-bench measures (issue 7).
--   ask mode:       event "echo" in namespace v1 answers with the body;
--   broadcast mode: event "shout" sends the body to every other connection
--                   in v1 as "chat" (the sender is excluded).
-- Kept minimal on purpose: the figures should be the server's cost, not
-- the handler's.
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      echo = function(ns, msg)
        return msg.body
      end,
      shout = function(ns, msg)
        ns.server:broadcast { namespace = "v1", event = "chat", body = msg.body, except = ns }
      end,
    },
  },
}
