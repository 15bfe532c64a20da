-- Parity test app: rooms (docs/protocol.md §7.4, §7.6 to §7.8; docs/lua-api.md "Rooms").
-- Room events are noted per connection ID in neffos.shared (shared_log.lua: with --workers N the
-- reading connection may sit on another worker) and read back with the `log` event from any
-- connection; joins and leaves are announced to the other members.
local neffos = require "neffos"
local shared_log = require "shared_log"

local function note(id, fmt, ...)
  shared_log("log:" .. id).add(fmt:format(...))
end

local function flags(msg)
  return ("forced=%s local=%s"):format(tostring(msg.is_forced == true), tostring(msg.is_local == true))
end

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

local function sorted(list)
  table.sort(list)
  return table.concat(list, ",")
end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  on_disconnect = function(conn) note(conn.id, "on_disconnect") end,
  namespaces = {
    chat = {
      [neffos.OnRoomJoin] = function(ns, msg)
        note(ns.id, "join %s %s", msg.room, flags(msg))
        if msg.room == "locked" then return nil, "room locked" end
      end,
      [neffos.OnRoomJoined] = function(ns, msg)
        note(ns.id, "joined %s %s", msg.room, flags(msg))
        ns.server:broadcast { namespace = "chat", room = msg.room, event = "notify",
                              body = ns.id .. " joined " .. msg.room, except = ns.conn }
      end,
      [neffos.OnRoomLeave] = function(ns, msg)
        note(ns.id, "leave %s %s", msg.room, flags(msg))
        if msg.room == "sticky" then return nil, "cannot leave sticky" end
      end,
      [neffos.OnRoomLeft] = function(ns, msg)
        note(ns.id, "left %s %s", msg.room, flags(msg))
        -- The leaver is no longer a member: everybody else in the room hears it.
        ns.server:broadcast { namespace = "chat", room = msg.room, event = "notify",
                              body = ns.id .. " left " .. msg.room }
      end,
      [neffos.OnNamespaceDisconnect] = function(ns, msg)
        note(ns.id, "disconnect %s", flags(msg))
      end,
      -- room chat: a client emits in a room (room.emit); the other members get it
      chat = function(ns, msg)
        if msg.room == "" then return nil, "not in a room" end
        ns.server:broadcast { namespace = "chat", room = msg.room, event = "chat",
                              body = ns.id .. ": " .. msg.body, except = ns.conn }
      end,
      log = function(ns, msg)
        return table.concat(shared_log("log:" .. msg.body).list(), "\n")
      end,
      members = function(ns, msg)
        local ids = {}
        for i, member in ipairs(ns.server:members("chat", msg.body)) do ids[i] = member.id end
        return sorted(ids)
      end,
      -- the Lua room API
      lua_join = function(ns, msg)
        local room, err = ns:join_room(msg.body)
        if not room then return nil, err end
        return room.name
      end,
      lua_rooms = function(ns)
        local names = {}
        for _, r in ipairs(ns:rooms()) do names[#names + 1] = r.name end
        return table.concat(names, ",")
      end,
      lua_room = function(ns, msg)
        local room = ns:room(msg.body)
        if room == nil then return nil, "no room " .. msg.body end
        return ("%s %s %s"):format(room.name, room.ns.namespace, tostring(room == ns:room(msg.body)))
      end,
      lua_leave = function(ns, msg)
        local room = ns:room(msg.body)
        if room == nil then return nil, "no room " .. msg.body end
        local ok, err = room:leave()
        if not ok then return nil, err end
        return "left " .. msg.body .. ", still in: " .. #ns:rooms()
      end,
      lua_leave_all = function(ns)
        local ok, err = ns:leave_all()
        if not ok then return nil, err end
        return "left all, still in: " .. #ns:rooms()
      end,
      -- "room|question": asks this client in a room
      lua_room_ask = function(ns, msg)
        local name, text = split(msg.body)
        local room = ns:room(name)
        if room == nil then return nil, "no room " .. name end
        local answer, err = room:ask("roomq", text, { timeout = 2 })
        if not answer then return nil, err end
        return answer.room .. ":" .. answer.body
      end,
      lua_room_emit = function(ns, msg)
        local name, text = split(msg.body)
        local room = ns:room(name)
        if room == nil then return nil, "no room " .. name end
        return tostring(room:emit("roomsay", text))
      end,
    },
  },
}
