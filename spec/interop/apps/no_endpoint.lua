-- An app that declares no endpoint: --endpoint decides its path.
local neffos = require "neffos"
return neffos.server {
  namespaces = { v1 = { echo = function(ns, msg) return msg.body end } },
}
