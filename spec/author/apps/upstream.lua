-- The second deployment of spec/author/client_bridge.test.mjs: what the bridge dials.
local neffos = require "neffos"
local state = neffos.state

return neffos.server {
  endpoint = "/echo",
  on_connect = function(conn)
    neffos.log.info("upstream: connection %s reconnect_tries=%d", conn.id, conn.reconnect_tries)
  end,
  namespaces = {
    v1 = {
      echo = function(_, msg) return "B:" .. msg.body end,
      -- Answers only once "release" came: the bridge's handler waits meanwhile.
      hold = function(_, msg)
        for _ = 1, 400 do
          if state.released then return "held:" .. msg.body end
          neffos.sleep(0.05)
        end
        return nil, "never released"
      end,
      release = function() state.released = true end,
      shout = function(ns, msg)
        ns.server:broadcast { namespace = "v1", event = "news", body = msg.body }
      end,
      -- The server asks its client (the bridge's Lua client) a question.
      ask_back = function(ns, msg)
        local answer, err = ns:ask("question", msg.body, { timeout = 5 })
        if not answer then return nil, err end
        return "B heard: " .. answer.body
      end,
      [neffos.OnRoomJoined] = function(ns, msg)
        neffos.log.info("upstream: %s joined %s", ns.id, msg.room)
      end,
    },
  },
}
