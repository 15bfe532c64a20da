-- Robustness test app: a native-only endpoint (no neffos handshake) that echoes every
-- WebSocket message as it came, text as text and binary as binary. Used to test the
-- WebSocket layer itself (spec/robust/rfc6455.test.mjs).
local neffos = require "neffos"

return neffos.server {
  endpoint = "/raw",
  native_only = true,
  namespaces = {
    [""] = {
      [neffos.OnNativeMessage] = function(ns, msg)
        ns.conn:write(msg.body, { binary = msg.binary })
      end,
    },
  },
}
