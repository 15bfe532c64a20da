-- neffos.shared under `neffos test` (spec/workers/workers.test.mjs): a counter in the shared dictionary.
local neffos = require "neffos"
return neffos.server { endpoint = "/echo", namespaces = { v1 = {
  hit = function() return tostring(neffos.shared:incr("hits", 1, 0)) end,
} } }
