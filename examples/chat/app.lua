-- The neffos "basic" chat example: endpoint /echo, namespace "default", rooms of the
-- clients' choice. Run it with examples/chat/run.sh and open http://localhost:8080/.
--
-- * The connection ID is the user name, from the X-Username header (neffos.js in a browser
--   sends it as the query parameter X-Websocket-Header-X-Username; the host makes it a header).
-- * "chat" carries JSON {"from": ..., "text": ...} and goes to the OTHER members of the
--   sender's room only. "from" is set here from the connection ID, so nobody can speak for
--   someone else.
-- * Joining and leaving a room send a "notify" text to the other members of that room.
local neffos = require "neffos"

local NS = "default"

-- Tells the other members of `room` what `ns` did (in OnRoomLeft the room is already left,
-- so by name: ns:broadcast knows its namespace, the option names the room).
local function notify(ns, room, text)
  ns:broadcast("notify", text, { room = room, except = ns })
end

return neffos.server {
  endpoint = "/echo",

  id = function(req)
    return req.headers["x-username"] -- nil: a random UUID
  end,

  namespaces = {
    [NS] = {
      [neffos.OnNamespaceConnected] = function(ns, msg)
        neffos.log.info("[%s] connected to namespace [%s]", ns.id, msg.namespace)
      end,

      [neffos.OnNamespaceDisconnect] = function(ns, msg)
        neffos.log.info("[%s] disconnected from namespace [%s]", ns.id, msg.namespace)
      end,

      [neffos.OnRoomJoined] = function(ns, msg)
        neffos.log.info("[%s] joined room [%s]", ns.id, msg.room)
        notify(ns, msg.room, ("%s joined the room"):format(ns.id))
      end,

      -- Also runs when a connection closes while in a room, so closing a tab says goodbye too.
      [neffos.OnRoomLeft] = function(ns, msg)
        neffos.log.info("[%s] left room [%s]", ns.id, msg.room)
        notify(ns, msg.room, ("%s left the room"):format(ns.id))
      end,

      chat = function(ns, msg)
        -- Only to a room the sender is in: an empty room would reach the whole namespace.
        local room = msg.room ~= "" and ns:room(msg.room)
        if not room then
          return nil, "join a room first"
        end
        local m = neffos.json.decode(msg.body)
        if type(m) ~= "table" or type(m.text) ~= "string" then
          return nil, 'chat: the body must be JSON {"text": "..."}'
        end
        room:broadcast("chat", neffos.json.encode { from = ns.id, text = m.text }, { except = ns })
      end,
    },
  },
}
