-- The neffos Getting Started app: namespace "v1", event "echo" replies "echo back: " + body.
--   neffos examples/echo --listen 127.0.0.1:8080
--   node examples/echo/client.mjs ws://127.0.0.1:8080/echo
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      echo = function(ns, msg)
        neffos.log.info("[%s] echo: %s", ns.id, msg.body)
        return "echo back: " .. msg.body
      end,
    },
  },
}
