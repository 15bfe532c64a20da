-- Worst-case memory of one connection (spec/robust/worst_case.test.mjs) and the soak
-- benchmark's hostile clients (spec/bench/soak.sh): as many namespaces as a connection may
-- join (--max-namespaces-per-conn, 64 by default), a handler that waits, one that makes
-- server asks the client never answers, and the ordinary echo.
local neffos = require "neffos"

local function handlers()
  return {
    echo = function(ns, msg) return msg.body end,
    -- Holds the connection's turn: its later frames are parked (--max-incoming-*).
    nap = function(ns, msg)
      neffos.sleep(tonumber(msg.body))
      return "rested"
    end,
    -- "N": N server asks to this connection, each from its own timer so that none waits for
    -- another (--max-pending-asks); they end when the client answers, times out or leaves.
    ask_me = function(ns, msg)
      for _ = 1, tonumber(msg.body) do
        neffos.after(0, function() ns:ask("q", "", { timeout = 600 }) end)
      end
      return "asking"
    end,
  }
end

local namespaces = {}
for i = 1, 64 do namespaces[string.format("n%02d", i)] = handlers() end
namespaces.v1 = handlers()

return neffos.server { endpoint = "/echo", namespaces = namespaces }
