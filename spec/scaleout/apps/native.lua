-- Test app of spec/scaleout/native.test.mjs: a native-only endpoint (docs/protocol.md §4.7, §11)
-- whose handler relays every frame it gets to every connection of every process, as Go's
-- Server.Broadcast of a native message does: the frame is the body alone.
local neffos = require "neffos"

return neffos.server {
  endpoint = "/native",
  namespaces = {
    [""] = {
      [neffos.OnNativeMessage] = function(ns, msg)
        ns.server:broadcast(msg)
      end,
    },
  },
}
