-- Test app of spec/workers/remote_attack: remote objects (lua_remote.c) under abuse: values
-- that cannot cross, targets and askers that close mid-call, listings where code cannot wait.
-- Every reply starts with the worker that ran the handler ("2:...").
local neffos = require "neffos"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end
local function answer(s) return neffos.worker.id .. ":" .. s end

-- Waits (at most 20 s) until done() is true.
local function wait_until(done)
  for _ = 1, 400 do
    if done() then return end
    neffos.sleep(0.05)
  end
end

-- a listing at the top level of app.lua raises (cannot wait here)
local top_ok, top_err = pcall(function()
  for _, server in pairs(neffos.servers()) do server:connections() end
end)
local top_level = tostring(top_ok) .. " " .. tostring(top_err)

-- Fills this worker's Lua heap to `margin` bytes below its cap (cap_mb, the server's
-- --lua-memory-limit-mb) without raising: allocation by allocation, counted.
local hog
local function fill_heap(cap_mb, margin)
  local function free() return cap_mb * 1024 * 1024 - collectgarbage("count") * 1024 end
  hog = {}
  local n = 0
  while free() > 200000 do n = n + 1; hog[n] = string.rep("y", 65536) .. n end
  collectgarbage("collect")
  local cur = hog
  while free() > margin do local t = {}; cur.n = t; cur = t end
end

local results = {}
local reload_listing = "none"   -- what a listing in on_reload did   -- what a handler got after its client went away (this worker's)

return neffos.server {
  endpoint = "/echo",
  id = function(req)
    local name = req.headers["x-username"]
    if name == "listing-in-id" then
      -- raises: id() cannot wait; the dial is refused, nothing crashes
      for _, server in pairs(neffos.servers()) do server:connections() end
    end
    return name
  end,
  on_reload = function()
    local ok, err = pcall(function()
      local _, server = next(neffos.servers())
      return server:connections()
    end)
    reload_listing = tostring(ok) .. " " .. tostring(err)
  end,
  namespaces = {
    w = {
      reload_listing = function() return answer(reload_listing) end,
      worker = function() return tostring(neffos.worker.id) end,
      -- "seconds": sleeps that long (a handler still running when a drain begins)
      nap = function(ns, msg) neffos.sleep(tonumber(msg.body)) return answer("napped") end,
      -- the caller's own store holds 8 MiB (a local call: no other worker involved)
      hold_big = function(ns) ns.conn:set("big", string.rep("b", 8 * 1024 * 1024)) return answer("held") end,
      -- "id": one remote method on that connection, run by its worker
      touch = function(ns, msg) return answer(tostring(ns.server:get(msg.body):get("nothing"))) end,
      -- this worker's Lua heap in KiB after a full collection
      heap_kb = function()
        collectgarbage("collect")
        collectgarbage("collect")
        return answer(tostring(math.floor(collectgarbage("count"))))
      end,
      top_level = function() return answer(top_level) end,
      -- "id|kind": a value that cannot cross
      bad_value = function(ns, msg)
        local id, kind = split(msg.body)
        local c = ns.server:get(id)
        local v
        if kind == "cycle" then v = {}; v.self = v
        elseif kind == "deep" then v = {}; local t = v; for _ = 1, 40 do t.x = {}; t = t.x end
        elseif kind == "fn_in_table" then v = { ok = 1, f = print }
        elseif kind == "coroutine" then v = coroutine.create(function() end)
        elseif kind == "key_table" then v = { [{}] = 1 }
        elseif kind == "huge" then v = string.rep("x", 8 * 1024 * 1024)
        elseif kind == "timer" then v = neffos.after(100, function() end); v:cancel()
        elseif kind == "null" then v = neffos.json.null
        end
        local ok, err = pcall(c.set, c, "k", v)
        if not ok then return answer("raised " .. tostring(err)) end
        local back = c:get("k")
        return answer("ok " .. type(back) .. " " .. (type(back) == "string" and #back or ""))
      end,
      -- "id": a remote object given back to its own worker, and returned from there
      roundtrip = function(ns, msg)
        local c = ns.server:get(msg.body)
        c:set("me", c)
        c:set("asker", ns.conn)
        local me, asker = c:get("me"), c:get("asker")
        return answer(("me==c %s me.remote %s asker==mine %s asker.remote %s"):format(
          tostring(me == c), tostring(me.remote), tostring(asker == ns.conn), tostring(asker.remote)))
      end,
      -- "id|seconds": ask that connection's client, whose handler never answers; report how it ended
      ask_slow = function(ns, msg)
        local id, secs = split(msg.body)
        local target = ns.server:get(id):namespace("w")
        local reply, err = target:ask("never", "?", { timeout = tonumber(secs) })
        local r = reply and ("reply " .. tostring(reply.body)) or ("nil " .. tostring(err))
        results[ns.conn.id] = r
        return answer(r)
      end,
      -- what a previous handler of a client (by ID) got, after that client went away
      result_of = function(ns, msg) return answer(tostring(results[msg.body])) end,
      -- "id|n": n remote calls at once from n timers of this worker, each waiting its answer
      many = function(ns, msg)
        local id, n = split(msg.body)
        n = tonumber(n)
        local done, okc = 0, 0
        for i = 1, n do
          neffos.after(0, function()
            local c = ns.server:get(id)
            if c then
              c:set("k" .. i, i)
              if c:get("k" .. i) == i then okc = okc + 1 end
            end
            done = done + 1
          end)
        end
        wait_until(function() return done == n end)
        return answer(("done %d ok %d"):format(done, okc))
      end,
      -- "id|n": n remote calls at once on one remote object, from timers of this worker: with
      -- --max-worker-queue small, answers find this worker's queue full and are posted again
      crowd = function(ns, msg)
        local id, n = split(msg.body)
        n = tonumber(n)
        local c = ns.server:get(id)
        c:set("crowd", "here")
        local done, okc, full, other = 0, 0, 0, {}
        for _ = 1, n do
          neffos.after(0, function()
            local v, err = c:get("crowd")
            if v == "here" then okc = okc + 1
            elseif tostring(err):find("queue is full", 1, true) then full = full + 1
            else other[#other + 1] = tostring(v) .. "/" .. tostring(err) end
            done = done + 1
          end)
        end
        wait_until(function() return done == n end)
        return answer(("done %d ok+full %d other %s"):format(done, okc + full, table.concat(other, ",")))
      end,
      -- a listing inside a nested coroutine of the handler, and a remote field read there
      nested = function(ns, msg)
        local co = coroutine.wrap(function()
          local list = ns.server:connections()
          local c = ns.server:get(msg.body)
          return #list, c.request.headers["x-username"], c:is_closed()
        end)
        local n, name, closed = co()
        return answer(("%s %s %s"):format(tostring(n), tostring(name), tostring(closed)))
      end,
      -- "id|room": join a remote connection to a room (the test disconnects it meanwhile)
      join_slow = function(ns, msg)
        local id, room = split(msg.body)
        local c = ns.server:get(id)   -- the race may be lost at any of these steps
        if not c then return answer("nil gone") end
        local target, err = c:namespace("w")
        if not target then return answer("nil " .. tostring(err)) end
        local r
        r, err = target:join_room(room)
        return answer(r and ("joined " .. r.name) or ("nil " .. tostring(err)))
      end,
      -- "text": broadcast to all but the ns of that id (a remote one when on the other worker)
      except_id = function(ns, msg)
        local id, text = split(msg.body)
        local skip = ns.server:get(id)
        local n = ns.server:broadcast { namespace = "w", event = "all", body = text, except = skip }
        return answer("sent " .. tostring(n))
      end,
      -- "id|mb": the asker holds mb MiB, stores mb MiB there and reads it back (near the Lua cap)
      big = function(ns, msg)
        local id, rest = split(msg.body)
        local mb, heremb = split(rest)
        local c = ns.server:get(id)
        local here = string.rep("h", tonumber(heremb) * 1024 * 1024)
        local ok, err = pcall(c.set, c, "big", string.rep("t", tonumber(mb) * 1024 * 1024))
        collectgarbage()
        local ok2, v = pcall(c.get, c, "big")
        return answer(("%s %s %s %s %d"):format(tostring(ok), tostring(err), tostring(ok2),
          type(v) == "string" and #v or tostring(v), #here))
      end,
      -- odd arguments to the listings: each raises or answers, nothing crashes
      odd_args = function(ns)
        local out = {}
        for _, f in ipairs {
          function() return ns.server:get(nil) end, function() return ns.server:get({}) end,
          function() return ns.server:get(12) end, function() return ns.server:get_all(string.rep("z", 100000)) end,
          function() return ns.server:members(nil) end, function() return ns.server:members("w", 5) end,
          function() return ns.server:members("w", string.rep("r", 70000)) end,
          function() return ns.server.connections(nil) end, function() return ns.server.members({}, "w") end,
        } do
          local ok, v = pcall(f)
          out[#out + 1] = tostring(ok) .. "/" .. (type(v) == "table" and ("#" .. #v) or tostring(v))
        end
        return answer(table.concat(out, " "))
      end,
      -- "id": a remote call where code cannot wait (inside a C function's callback): raises
      no_wait = function(ns, msg)
        local c = ns.server:get(msg.body)
        local out = {}
        for i = 1, 3 do
          local ok, err = pcall(string.gsub, "a", "a", function() return tostring(c:is_closed()) end)
          out[#out + 1] = tostring(ok) .. " " .. tostring(err)
          ok, err = pcall(table.sort, { 1, 2, 3 }, function(x, y) return c.request and x < y end)
          out[#out + 1] = tostring(ok) .. " " .. tostring(err)
        end
        return answer(table.concat(out, " | "))
      end,
      -- "id": two listings' objects as table keys, and == with the local object first
      keys = function(ns, msg)
        local t = {}
        t[ns.server:get(msg.body)] = true
        local mine = ns.server:get(ns.conn.id)
        return answer(("remote_key_found=%s local_key_same=%s local_first_eq=%s"):format(
          tostring(t[ns.server:get(msg.body)] == true), tostring(rawequal(mine, ns.conn)),
          tostring(ns.conn == ns.server:get(msg.body))))
      end,
      -- "id": close that connection, then read its request (as a listing's entry closed meanwhile is)
      closed_request = function(ns, msg)
        local c = ns.server:get(msg.body)
        c:close()
        for _ = 1, 100 do
          if c:is_closed() then break end
          neffos.sleep(0.02)
        end
        local req = c.request
        return answer(("remote=%s closed=%s request=%s tries=%s"):format(tostring(c.remote == true),
          tostring(c:is_closed()), type(req), type(c.reconnect_tries)))
      end,
      -- "id|cap_mb|margin": a msg handed to another worker while the heap is `margin` bytes
      -- below the cap: its copy must not allocate in this heap once the call is made (a raise
      -- there leaked the call); then what arrived
      msg_near_cap = function(ns, msg)
        local id, rest = split(msg.body)
        local cap_mb, margin = split(rest)
        local c = ns.server:get(id)
        local set = c.set
        set(c, "warm", 1)   -- the stack and call frames this needs, grown before the fill
        fill_heap(tonumber(cap_mb), tonumber(margin))
        set(c, "msg", msg)
        hog = nil
        local got = c:get("msg")
        return answer(("room=%q is_local=%s event=%s"):format(got.room, tostring(got.is_local), got.event))
      end,
      -- '{"to": id}': a msg stored on another worker's connection and read back is a msg on
      -- either side: it unmarshals with the endpoint's codec, reads its defaults, and relays
      msg_across = function(ns, msg)
        local c = ns.server:get(msg:unmarshal().to)
        c:set("msg", msg)
        local there = c.remote and "remote" or "local"
        local back = c:get("msg")
        local decoded, derr = back:unmarshal()
        local relayed, rerr = ns.server:broadcast(back)
        local raw = {}
        for k in pairs(back) do raw[#raw + 1] = k end
        table.sort(raw)
        return answer(("%s %s to=%s room=%q is_local=%s token=%s relayed=%s raw=%s"):format(there,
          tostring(back):match("^neffos%.msg") or tostring(back), decoded and decoded.to or derr,
          back.room, tostring(back.is_local), back.token and "set" or "nil",
          relayed and "yes" or tostring(rerr), table.concat(raw, ",")))
      end,
      -- a method that does not exist on a remote object, and an unknown field
      unknown = function(ns, msg)
        local c = ns.server:get(msg.body)
        local ok, err = pcall(function() return c:nosuch() end)
        return answer(("field=%s ok=%s %s"):format(tostring(c.nosuch), tostring(ok), tostring(err)))
      end,
    },
  },
}
