-- Scale-out asked for by the app itself (neffos.scale_out), not by a flag.
local neffos = require "neffos"

neffos.scale_out { redis = os.getenv("NEFFOS_TEST_REDIS"), prefix = "fromapp" }

return neffos.server {
  endpoint = "/cluster",
  id = function(req) return req.headers["X-Username"] end,
  namespaces = {
    default = {
      all = function(ns, msg)
        ns.server:broadcast { namespace = "default", event = "news", body = msg.body }
      end,
    },
  },
}
