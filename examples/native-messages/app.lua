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
        if msg.binary then
          ns.conn:write_binary(msg.body)
        else
          -- The return value of a native-only handler is ignored: write the answer ourselves.
          ns.conn:write_text(msg.body == "ping" and "pong" or msg.body)
        end
      end,
    },
  },
}
