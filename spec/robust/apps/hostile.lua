-- Robustness test app (spec/robust/hostile.test.mjs): handlers that misbehave on purpose,
-- and a broadcaster for slow-reader tests. Namespace "v1".
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      echo = function(ns, msg)
        return msg.body
      end,
      -- A runaway loop: the instruction budget must abort it.
      spin = function(ns, msg)
        while true do end
      end,
      -- Allocates without end: the memory cap must abort it.
      hog = function(ns, msg)
        local t = {} -- luacheck: ignore 241
        local i = 0
        while true do
          i = i + 1
          t[i] = string.rep("x", 4096) .. i
        end
      end,
      -- "N SIZE": broadcasts N events "news" of SIZE bytes to the whole namespace.
      flood = function(ns, msg)
        local n, size = msg.body:match("^(%d+) (%d+)$")
        local body = string.rep("b", tonumber(size))
        for i = 1, tonumber(n) do
          ns:broadcast("news", body)
        end
        return "sent " .. n
      end,
      nap = function(ns, msg)
        neffos.sleep(tonumber(msg.body))
        return "rested"
      end,
    },
    v2 = {
      echo = function(ns, msg)
        return msg.body
      end,
    },
  },
}
