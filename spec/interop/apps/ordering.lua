-- Interop test app for spec/interop/ordering.test.mjs: the connection's turn (its handlers run one
-- at a time, notifications and forced actions included) and what is sent right after a connect or
-- join reply. Every handler notes what it does per connection ID; `notes` returns them. The notes
-- live in neffos.shared (shared_log.lua): with --workers N, `notes` may run on another worker.
local neffos = require "neffos"
local shared_log = require "shared_log"

local function note(id, what) shared_log("notes:" .. id, 100).add(what) end

return neffos.server {
  endpoint = "/echo",
  id = function(req)
    return req.headers["x-username"]
  end,
  -- The Go client's WaitServerConnect: the server connects "chat" right after the handshake.
  on_connect = function(conn)
    if conn.request.headers["x-force"] then
      conn:connect("chat")
    end
  end,
  namespaces = {
    -- Handlers that wait while setting up the state the next event reads.
    slow = {
      [neffos.OnNamespaceConnected] = function(ns, msg)
        neffos.sleep(0.3)
        ns.conn:set("ready", "connected")
      end,
      [neffos.OnRoomJoined] = function(ns, msg)
        neffos.sleep(0.3)
        ns.conn:set("room", msg.room)
      end,
      state = function(ns, msg)
        return ("%s %s"):format(tostring(ns.conn:get("ready")), tostring(ns.conn:get("room")))
      end,
    },
    -- What OnNamespaceConnected sends must reach neffos.js: an emit and a forced join.
    welcome = {
      [neffos.OnNamespaceConnected] = function(ns, msg)
        ns:emit("welcome", "welcome " .. ns.id)
        local room, err = ns:join_room("lobby")
        ns:emit("joined", room and room.name or ("error " .. tostring(err)))
      end,
      echo = function(ns, msg)
        return msg.body
      end,
    },
    -- Sends 100 KB from OnNamespaceConnected: held behind the barrier, counted in the output bound.
    burst = {
      [neffos.OnNamespaceConnected] = function(ns, msg)
        local body = string.rep("z", 1000)
        for i = 1, 100 do
          if not ns:emit("burst", body) then return end
        end
      end,
    },
    chat = {
      echo = function(ns, msg)
        return "echo: " .. msg.body
      end,
    },
    -- A forced action asked from another connection waits for this connection's turn.
    outside = {
      slow = function(ns, msg)
        note(ns.id, "slow start")
        ns:emit("started", "")
        neffos.sleep(1)
        note(ns.id, "slow end")
        return "slow done"
      end,
      force_join = function(ns, msg)
        local c = ns.server:get(msg.body)
        local target = c and c:namespace("outside")
        if not target then return nil, "no target" end
        local room, err = target:join_room("r")
        return room and "joined" or err
      end,
      -- Holds this connection's turn first: two of these asked of each other wait for each other.
      force_join_late = function(ns, msg)
        neffos.sleep(0.3)
        local c = ns.server:get(msg.body)
        local target = c and c:namespace("outside")
        if not target then return nil, "no target" end
        local room, err = target:join_room("r")
        return room and "joined" or err
      end,
      [neffos.OnRoomJoined] = function(ns, msg)
        note(ns.id, "joined " .. msg.room)
      end,
      notes = function(ns, msg)
        return table.concat(shared_log("notes:" .. msg.body, 100).list(), ",")
      end,
    },
  },
}
