-- Parity test app: server-driven actions (docs/protocol.md §7.3, §7.5 to §7.7, §12; docs/lua-api.md):
-- forced connect (from on_connect, a handler, a timer), forced disconnect, join, leave,
-- and closing with a code. Server-side events are noted per ID in neffos.shared (shared_log.lua:
-- with --workers N the "log" request may run on another worker than the events).
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

-- the system events of a namespace, noted
local function noting(extra)
  local t = {}
  for _, ev in ipairs { neffos.OnNamespaceConnect, neffos.OnNamespaceConnected, neffos.OnNamespaceDisconnect,
                        neffos.OnRoomJoin, neffos.OnRoomJoined, neffos.OnRoomLeave, neffos.OnRoomLeft } do
    t[ev] = function(ns, msg)
      note(ns and ns.id or "?", "%s %s%s %s", msg.namespace, ev, msg.room ~= "" and (" " .. msg.room) or "", flags(msg))
    end
  end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

local function connect_result(f, err)
  if not f then return nil, err end
  return "connected " .. f.namespace .. " " .. tostring(f:is_connected())
end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  on_connect = function(conn)
    local what = conn.request.headers["x-force"]
    if what then
      for name in what:gmatch("[^,]+") do
        local ns = conn:connect(name)   -- sent right after the "A" frame
        note(conn.id, "on_connect connect %s -> %s", name, tostring(ns and ns.namespace))
      end
    end
  end,
  on_disconnect = function(conn) note(conn.id, "on_disconnect") end,
  namespaces = {
    default = {
      force_connect = function(ns, msg) return connect_result(ns.conn:connect(msg.body)) end,
      force_connect_later = function(ns, msg)
        local conn = ns.conn
        neffos.after(0.2, function()
          local f, err = conn:connect(msg.body)
          note(conn.id, "timer connect %s -> %s", msg.body, f and "ok" or tostring(err))
        end)
        return "scheduled"
      end,
      force_disconnect = function(ns, msg)
        local other = ns.conn:namespace(msg.body)
        if not other then return nil, "not connected to " .. msg.body end
        local ok, err = other:disconnect()
        if not ok then return nil, err end
        return "disconnected " .. msg.body .. " " .. tostring(other:is_connected())
      end,
      -- "ns|room": force-join this connection to a room of a namespace
      force_join = function(ns, msg)
        local name, room = split(msg.body)
        local target = ns.conn:namespace(name)
        if not target then return nil, "not connected to " .. name end
        local r, err = target:join_room(room)
        if not r then return nil, err end
        return "joined " .. r.name
      end,
      force_leave = function(ns, msg)
        local name, room = split(msg.body)
        local target = ns.conn:namespace(name)
        local r = target and target:room(room)
        if not r then return nil, "not in " .. room end
        local ok, err = r:leave()
        if not ok then return nil, err end
        return "left " .. room
      end,
      -- "code|reason": close this connection from its own handler
      close_me = function(ns, msg)
        local code, reason = split(msg.body)
        ns.conn:close(tonumber(code), reason)
      end,
      -- "id|code|reason": close another connection
      kick = function(ns, msg)
        local id, rest = split(msg.body)
        local code, reason = split(rest)
        local c = ns.server:get(id)
        if not c then return nil, "no " .. id end
        c:close(tonumber(code), reason)
        return "kicked " .. id
      end,
      log = function(ns, msg) return table.concat(shared_log("log:" .. msg.body).list(), "\n") end,
    },
    forced = noting {
      hi = function(ns) return "hi from forced" end,
    },
    -- refuses server-forced connects locally (7.3: the local OnNamespaceConnect decides first)
    guarded = {
      [neffos.OnNamespaceConnect] = function(ns, msg)
        if msg.is_local then return nil, "guarded: not by force" end
      end,
    },
    undeclared_on_client = {},
  },
}
