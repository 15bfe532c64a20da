-- Parity test app: a native-only endpoint (docs/protocol.md §4.7, §11; docs/lua-api.md native_only): the only
-- handler is namespaces[""][OnNativeMessage], so there is no handshake and every frame is raw.
local neffos = require "neffos"

-- The process's connect count (neffos.shared: neffos.state is per worker with --workers N).
local shared = neffos.shared

return neffos.server {
  endpoint = "/native",
  on_connect = function() shared:incr("native:connects", 1, 0) end,
  namespaces = {
    [""] = {
      [neffos.OnNativeMessage] = function(ns, msg)
        local body = msg.body
        if msg.binary then
          ns.conn:write(body:reverse(), { binary = true })
        elseif body:sub(1, 4) == "all:" then
          -- the Server.Do equivalent: a raw frame to every connection
          for _, c in ipairs(ns.server:connections()) do c:write(body:sub(5)) end
        elseif body == "info" then
          ns.conn:write(("native=%s event=%s ns=[%s] connects=%d count=%d"):format(
            tostring(msg.is_native), msg.event, msg.namespace, shared:get("native:connects"), ns.server:count()))
        elseif body:sub(1, 6) == "relay:" then
          -- the received msg relayed as it is: a native one goes out as its body alone, as Go's
          -- Server.Broadcast writes it (docs/protocol.md §11)
          ns.server:broadcast(msg)
        elseif body == "return" then
          return "ignored"   -- a native handler's result is not sent (docs/protocol.md §11.1)
        else
          ns.conn:write("echo: " .. body)
        end
      end,
    },
  },
}
