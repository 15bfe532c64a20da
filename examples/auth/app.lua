-- Authentication: a connection needs a token, and the token decides which rooms it may join.
--   examples/auth/run.sh, then open http://localhost:8080/
-- The token travels as the header "Authorization: Bearer <token>" (neffos.js in Node, any
-- client that can set headers) or, from a browser, as the query parameter
-- X-Websocket-Header-Authorization=Bearer%20<token>, which the host turns into the same header.
local neffos = require "neffos"

-- A real app would look tokens up in a store; this table keeps the example self-contained.
local TOKENS = {
  ["alice-token"] = { user = "alice", rooms = { lobby = true, dev = true } },
  ["bob-token"] = { user = "bob", rooms = { lobby = true } },
}

-- The grant of a request's bearer token, or nil.
local function grant(req)
  local token = (req.headers["authorization"] or ""):match("^[Bb]earer%s+(%S+)%s*$")
  return token and TOKENS[token]
end

return neffos.server {
  endpoint = "/echo",

  -- The user name of the token is the connection ID (nil for a bad token: it is refused below).
  id = function(req)
    local g = grant(req)
    return g and g.user
  end,

  -- Refusing here rejects the client's dial() with this text, before any namespace exists.
  on_connect = function(conn)
    if not grant(conn.request) then
      neffos.log.warn("refused a connection from %s: no valid token", conn.request.remote_addr)
      return nil, "unauthorized: a valid token is required (Authorization: Bearer <token>)"
    end
    neffos.log.info("[%s] authenticated", conn.id)
  end,

  namespaces = {
    default = {
      -- Refusing here rejects the client's joinRoom() with this text.
      [neffos.OnRoomJoin] = function(ns, msg)
        if not grant(ns.conn.request).rooms[msg.room] then
          return nil, ("forbidden: %s may not join room %q"):format(ns.id, msg.room)
        end
      end,

      [neffos.OnRoomJoined] = function(ns, msg)
        neffos.log.info("[%s] joined room [%s]", ns.id, msg.room)
      end,

      -- The rooms this connection's token allows, as JSON (the page lists them).
      rooms = function(ns)
        local list = {}
        for name in pairs(grant(ns.conn.request).rooms) do list[#list + 1] = name end
        table.sort(list)
        return neffos.json.encode(list)
      end,

      -- As in examples/chat: JSON {"text": ...} to the other members of the sender's room.
      chat = function(ns, msg)
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
