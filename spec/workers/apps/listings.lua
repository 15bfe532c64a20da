-- Test app of spec/workers/listings: server:connections / get / get_all / members cover every
-- worker, and another worker's connection is a remote object whose methods run there.
-- Every reply starts with the worker that ran the handler ("2:...").
local neffos = require "neffos"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

local function ids(list)
  local out = {}
  for i, x in ipairs(list) do out[i] = x.id .. "@" .. (x.worker or neffos.worker.id) end
  return table.concat(out, ",")
end

local function answer(s) return neffos.worker.id .. ":" .. s end

local kept   -- the object `kick` closed (this worker's: the test asks the same client for it)

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    w = {
      worker = function() return tostring(neffos.worker.id) end,
      connections = function(ns) return answer(ids(ns.server:connections())) end,
      members = function(ns, msg)
        local name, room = split(msg.body)
        return answer(ids(ns.server:members(name, room ~= "" and room or nil)))
      end,
      get_all = function(ns, msg) return answer(ids(ns.server:get_all(msg.body))) end,
      -- "id": the newest connection with it: remote or not, its ID, tab header, namespaces, state
      get = function(ns, msg)
        local c = ns.server:get(msg.body)
        if not c then return answer("nil") end
        local names = {}
        for _, n in ipairs(c:namespaces()) do names[#names + 1] = n.namespace end
        return answer(("%s remote=%s tab=%s ns=%s closed=%s tostring=%s"):format(c.id, tostring(c.remote == true),
          tostring(c.request.headers["x-tab"]), table.concat(names, "+"), tostring(c:is_closed()), tostring(c)))
      end,
      -- "id|event|text": emit to the ns of that connection
      emit_to = function(ns, msg)
        local id, rest = split(msg.body)
        local event, text = split(rest)
        local target = ns.server:get(id):namespace("w")
        return answer(tostring(target:emit(event, text)))
      end,
      -- "id|text": ask that connection's client, wait for its answer
      ask_to = function(ns, msg)
        local id, text = split(msg.body)
        local target = ns.server:get(id):namespace("w")
        local reply, err = target:ask("question", text, { timeout = 3 })
        if not reply then return answer("failed: " .. tostring(err)) end
        return answer(reply.body .. " room=" .. tostring(reply.room))
      end,
      -- "id|room": join that connection to a room (forced), then list the room's members
      join = function(ns, msg)
        local id, room = split(msg.body)
        local target = ns.server:get(id):namespace("w")
        local r, err = target:join_room(room)
        if not r then return answer("failed: " .. tostring(err)) end
        local names = {}
        for _, x in ipairs(target:rooms()) do names[#names + 1] = x.name end
        return answer(("joined %s (%s) rooms=%s"):format(r.name, tostring(r.ns.conn.id), table.concat(names, "+")))
      end,
      -- "id|room": the room object of that connection, left
      leave = function(ns, msg)
        local id, room = split(msg.body)
        local r = ns.server:get(id):namespace("w"):room(room)
        if not r then return answer("not in " .. room) end
        return answer("left=" .. tostring(r:leave()))
      end,
      -- "id|key": a table stored in the connection's values, read back (copied both ways)
      store = function(ns, msg)
        local id, key = split(msg.body)
        local c = ns.server:get(id)
        c:set(key, { list = { 1, 2.5, "three", true }, nested = { deep = { deeper = "x" } } })
        local v = c:get(key)
        return answer(("%d %s %s %s %s %s"):format(#v.list, math.type(v.list[1]), tostring(v.list[2]), v.list[3],
          tostring(v.list[4]), v.nested.deep.deeper))
      end,
      -- "id": a function cannot go to another worker: the error is raised here
      bad_arg = function(ns, msg)
        local c = ns.server:get(msg.body)
        local ok, err = pcall(c.set, c, "k", function() end)
        return answer(tostring(ok) .. " " .. tostring(err))
      end,
      -- "id": an error raised there is raised here, with its message
      bad_code = function(ns, msg)
        local c = ns.server:get(msg.body)
        local ok, err = pcall(c.close, c, 99)
        return answer(tostring(ok) .. " " .. tostring(err))
      end,
      -- "id|code|reason": close that connection
      kick = function(ns, msg)
        local id, rest = split(msg.body)
        local code, reason = split(rest)
        local c = ns.server:get(id)
        kept = c
        c:close(tonumber(code), reason)
        return answer("kicked")
      end,
      -- the object kept by kick, after its connection closed
      kept = function()
        local c = kept
        if not c then return answer("none") end
        local ok, err = c:namespace("w")
        return answer(("closed=%s ns=%s %s"):format(tostring(c:is_closed()), tostring(ok), tostring(err)))
      end,
      -- "text": to every member but the sender, except = its own ns or (from the other side) remote
      except_remote = function(ns, msg)
        local id, text = split(msg.body)
        local skip = ns.server:get(id):namespace("w")
        ns.server:broadcast { namespace = "w", event = "all", body = text, except = skip }
        return answer("sent")
      end,
      -- what a remote object is equal to
      same = function(ns, msg)
        local a, b = ns.server:get(msg.body), ns.server:get(msg.body)
        return answer(tostring(a == b) .. " " .. tostring(a == ns.conn))
      end,
    },
  },
}
