-- Test app for the Lua API end to end: store, rooms, server asks, timers,
-- the sandbox limits, neffos.state and on_reload.
local neffos = require "neffos"
local version = require "version"

local state = neffos.state
state.loads = (state.loads or 0) + 1
state.ticks = state.ticks or 0

neffos.every(0.05, function() state.ticks = state.ticks + 1 end)

return neffos.server {
  endpoint = "/echo",
  on_connect = function(conn)
    if conn.request.headers["x-force"] then
      local ns = conn:connect("forced")   -- sent right after the handshake
      assert(ns and ns.namespace == "forced")
    end
  end,
  on_reload = function(old)
    state.reloaded_from = old.version
  end,
  namespaces = {
    forced = {
      hi = function(ns) return "hi from forced" end,
      kick = function(ns)
        neffos.after(0, function() assert(ns:disconnect()) end)
        return "bye"
      end,
    },
    default = {
      connect_forced = function(ns)
        local f, err = ns.conn:connect("forced")
        if not f then return nil, err end
        return f.namespace .. " " .. tostring(f:is_connected())
      end,
      version = function() return version end,
      loads = function() return tostring(state.loads) end,
      reloaded_from = function() return tostring(state.reloaded_from) end,
      ticks = function() return tostring(state.ticks) end,
      count = function(ns) return tostring(ns.conn:increment("n")) end,
      join = function(ns, msg)
        local room, err = ns:join_room(msg.body)
        if not room then return nil, err end
        local names = {}
        for _, r in ipairs(ns:rooms()) do names[#names + 1] = r.name end
        return table.concat(names, ",")
      end,
      leave = function(ns, msg)
        local room = ns:room(msg.body)
        if not room then return nil, "not in " .. msg.body end
        assert(room:leave())
        return tostring(#ns:rooms())
      end,
      members = function(ns, msg)
        local ids = {}
        for i, member in ipairs(ns.server:members("default", msg.body)) do ids[i] = member.id end
        return table.concat(ids, ",")
      end,
      askme = function(ns, msg)   -- the server asks this very client by ID
        local answer, err = ns.server:ask { to = ns.id, namespace = "default", event = "question", body = msg.body, timeout = 2 }
        if not answer then return nil, err end
        return "you said " .. answer.body
      end,
      nap = function(ns, msg)
        neffos.sleep(0.05)
        return "rested"
      end,
      spin = function() while true do end end,
      spin_pcall = function()
        for _ = 1, 10 do pcall(function() while true do end end) end
        return "escaped"
      end,
      hog = function()
        -- t only grows: the memory cap must stop it
        local t = {} -- luacheck: ignore 241
        for i = 1, 1e8 do t[i] = ("x"):rep(1000) .. i end
      end,
      sandbox = function() -- what the sandbox hides, on purpose:
        return table.concat({ tostring(io), tostring(os.execute), tostring(debug), tostring(require == nil) }, ",") -- luacheck: ignore 113 143
      end,
      after = function(ns, msg)
        local id = ns.id
        neffos.after(0.02, function()
          local c = ns.server:get(id)
          if c then c:namespace("default"):emit("later", "timer fired") end
        end)
        return "scheduled"
      end,
      json = function(ns, msg)
        local t = neffos.json.decode(msg.body)
        t.seen = true
        return neffos.json.encode(t)
      end,
      raise_table = function() error({ code = 1 }) end,
      bad_return = function() return true end,
      empty_error = function() return nil, "" end,
    },
  },
}
