-- spec/bench/soak_app.lua - the app of the soak benchmark (spec/bench/soak.sh): the bench app's
-- "echo" and "shout" for the legitimate clients, and what the hostile ones aim at: a handler that
-- waits (input parks behind it) and a key=value parser whose pattern backtracks on blank input
-- (the looping pattern handler of issue 11 point 9: metered, it fails instead of holding the loop).
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      echo = function(ns, msg) return msg.body end,
      shout = function(ns, msg)
        ns.server:broadcast { namespace = "v1", event = "chat", body = msg.body, except = ns }
      end,
      nap = function(ns, msg)
        neffos.sleep(tonumber(msg.body))
        return "rested"
      end,
      kv = function(ns, msg)
        local k, v = msg.body:match("^%s*(.-)%s*=%s*(.-)%s*$")
        return (k or "?") .. "=" .. (v or "?")
      end,
    },
  },
}
