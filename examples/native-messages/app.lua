-- Native (raw) WebSocket messages, as in the neffos docs' "Working with Native Messages": the
-- only namespace is "" and its only handler is OnNativeMessage, so there is no neffos handshake
-- and any WebSocket client can talk to /endpoint. "ping" is answered "pong"; anything else is
-- echoed back in the frame type it came in.
--   examples/native-messages/run.sh, then open http://localhost:8080/
local neffos = require "neffos"

return neffos.server {
  endpoint = "/endpoint",
  namespaces = {
    [""] = {
      [neffos.OnNativeMessage] = function(ns, msg)
        neffos.log.info("[%s] got: %s", ns.id, msg.binary and ("%d bytes"):format(#msg.body) or msg.body)
        -- The return value of a native-only handler is ignored: write the answer ourselves,
        -- in the frame type the message came in.
        local answer = (not msg.binary and msg.body == "ping") and "pong" or msg.body
        ns.conn:write(answer, { binary = msg.binary })
      end,
    },
  },
}
