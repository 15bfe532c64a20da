-- The app of spec/reload/stress.test.mjs and spec/bench/reload_latency.mjs, which copy
-- it to a temporary directory and rewrite the VERSION/PREFIX lines (and util.lua's
-- version) for every edit. Every reply carries the version that answered it:
-- "v<version>:<body>". Broken saves get the prefix "BROKEN-v", which must never be seen.
local neffos = require "neffos"
local util = require "util"

local VERSION = 1
local PREFIX = "v"

local version = math.max(VERSION, util.version)   -- an edit of util.lua bumps it too

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      ask = function(ns, msg)
        return PREFIX .. version .. ":" .. msg.body
      end,
    },
  },
}
