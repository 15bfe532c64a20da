-- Robustness test app (spec/robust/ws_bounds.test.mjs): a native-only endpoint whose answer is
-- sent after a sleep, outside the read that asked for it (a timer, in effect). "big N": N bytes
-- of binary.
local neffos = require "neffos"

return neffos.server {
  endpoint = "/raw",
  native_only = true,
  namespaces = {
    [""] = {
      [neffos.OnNativeMessage] = function(ns, msg)
        local n = tonumber(msg.body:match("^big (%d+)$"))
        if n then
          neffos.sleep(0.01)
          ns.conn:write(string.rep("x", n), { binary = true })
        end
      end,
    },
  },
}
