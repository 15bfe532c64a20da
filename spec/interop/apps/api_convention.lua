-- Test app of the Lua API convention (docs/lua-api.md, "Conventions"; issue 13 point 9): every
-- call that can fail returns nil, err; options are tables; a binary option wherever a body is
-- sent; room:broadcast; listings are lists of objects.
local neffos = require "neffos"
local json = neffos.json

local kept = {}   -- name -> the ns of a connection, kept after it closed (this worker's: the
                  -- test asks "stale" from a connection of the keeping worker)

-- Runs fn and returns what it raised (nil if it did not raise).
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return nil end
  return tostring(err)
end

local function pack(...) return { n = select("#", ...), ... } end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    api = {
      -- Checks made inside the server, reported as JSON.
      report = function(ns)
        local r = {}
        local dv, derr = json.decode("{bad json")
        r.decode_bad = { dv == nil, type(derr) }
        local ev, eerr = json.encode({ f = function() end })
        r.encode_bad = { ev == nil, type(eerr) }
        r.decode_good = json.decode('{"a":[1,2]}').a[2]
        r.remote_addr = { ns.conn.remote_addr == nil, type(ns.conn.request.remote_addr) }
        r.emit = ns:emit("hello", "x")
        r.ask_number = raised(ns.ask, ns, "q", "", 5)
        r.unknown_option = raised(ns.emit, ns, "x", "", { binray = true })
        r.broadcast_table = raised(ns.broadcast, ns, "x", "", "others")
        r.server_unknown = raised(ns.server.broadcast, ns.server, { namespace = "api", event = "x", ecxept = ns })
        local conns = ns.server:connections()
        r.connections = { type(conns), type(conns[1]) == "userdata" and tostring(conns[1]):sub(1, 5) }
        local found = false
        for _, member in ipairs(ns.server:members("api")) do
          if rawequal(member, ns) then found = true end
        end
        r.members_are_ns = found
        r.namespaces = tostring(ns.conn:namespaces()[1])
        return json.encode(r)
      end,
      -- The worker serving this connection (a broadcast returns that worker's receivers).
      worker = function() return tostring(neffos.worker.id) end,
      keep = function(ns, msg) kept[msg.body] = ns; return tostring(neffos.worker.id) end,
      -- What a kept ns / conn answers once its connection is gone.
      stale = function(_, msg)
        local ns = kept[msg.body]
        -- Wait (bounded) until the host freed that connection: then its ns has no id.
        for _ = 1, 500 do
          if ns.id == nil then break end
          neffos.sleep(0.01)
        end
        local function two(...) local t = pack(...); return { tostring(t[1]), tostring(t[2]) } end
        return json.encode {
          gone = ns.id == nil,
          emit = two(ns:emit("x", "y")),
          ask = two(ns:ask("x", "y", { timeout = 1 })),
          broadcast = two(ns:broadcast("x", "y")),
          write = two(ns.conn:write("y")),
          leave_all = two(ns:leave_all()),
          disconnect = two(ns:disconnect()),
          close = two(ns.conn:close()),
        }
      end,
      -- To the other members of the sender's room, as a binary frame.
      room_bc = function(ns, msg)
        local room = ns:room(msg.room)
        if not room then return nil, "join a room first" end
        return tostring(room:broadcast("rb", msg.body, { except = ns, binary = true }))
      end,
      -- To a room named in the body through the ns (the sender's namespace is implied).
      ns_bc_room = function(ns, msg)
        return tostring(ns:broadcast("nb", "to the room", { room = msg.body, binary = true }))
      end,
      emit_binary = function(ns, msg)
        return tostring(ns:emit("eb", msg.body, { binary = true }))
      end,
      -- Raw frames: binary, then text, then an event saying what write returned.
      raw_write = function(ns)
        local a = ns.conn:write("raw-bin", { binary = true })
        local b = ns.conn:write("raw-text")
        ns:emit("wrote", tostring(a) .. "," .. tostring(b))
      end,
    },
  },
}
