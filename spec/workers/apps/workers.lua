-- Test app of spec/workers: one server over --workers N. Replies name the worker that runs the
-- handler (the test hook that tells which worker serves a connection); counts that must hold for
-- the process live in neffos.shared, never in module locals (each worker has its own).
local neffos = require "neffos"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

-- Once per process (worker 1 only) and once per worker: how many timers run.
neffos.every(0.05, function() neffos.shared:incr("ticks:once", 1, 0) end, { worker = 1 })
neffos.every(0.05, function() neffos.shared:incr("ticks:w" .. neffos.worker.id, 1, 0) end)

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    w = {
      -- "worker/count": which worker serves this connection
      worker = function() return neffos.worker.id .. "/" .. neffos.worker.count end,
      -- to the whole namespace
      all = function(ns, msg)
        ns.server:broadcast { namespace = "w", event = "all", body = msg.body }
        return "ok"
      end,
      -- to all but the sender: except = the conn, or its ID
      except_conn = function(ns, msg)
        ns.server:broadcast { namespace = "w", event = "all", body = msg.body, except = ns.conn }
        return "ok"
      end,
      except_id = function(ns, msg)
        ns.server:broadcast { namespace = "w", event = "all", body = msg.body, except = ns.id }
        return "ok"
      end,
      -- "id|text" to one ID
      whisper = function(ns, msg)
        local to, text = split(msg.body)
        ns.server:broadcast { namespace = "w", to = to, event = "whisper", body = text }
        return "ok"
      end,
      -- "room|text" to one room
      roomcast = function(ns, msg)
        local room, text = split(msg.body)
        ns.server:broadcast { namespace = "w", room = room, event = "roomcast", body = text }
        return "ok"
      end,
      -- "n": n broadcasts in a row from one handler (their order must hold everywhere)
      burst = function(ns, msg)
        for i = 1, tonumber(msg.body) do
          ns.server:broadcast { namespace = "w", event = "burst", body = tostring(i) }
        end
        return "ok"
      end,
      -- "id|question": server:ask by ID, whichever worker serves it
      ask_id = function(ns, msg)
        local to, question = split(msg.body)
        local answer, err = ns.server:ask { to = to, namespace = "w", event = "question", body = question, timeout = 2 }
        if not answer then return "ask failed: " .. tostring(err) end
        return "answer: " .. answer.body
      end,
      count = function(ns) return tostring(ns.server:count()) end,
      -- the shared dictionary: "op|key|value"
      shared = function(_, msg)
        local op, rest = split(msg.body)
        local key, value = split(rest)
        local d = neffos.shared
        if op == "set" then return tostring((d:set(key, value))) end
        if op == "get" then return tostring(d:get(key)) end
        if op == "incr" then return tostring((d:incr(key, 1, 0))) end
        if op == "add" then
          local ok, err = d:add(key, value)
          return ok and "added" or err
        end
        if op == "fill" then   -- sets keys until the dictionary is full
          for i = 1, 100000 do
            local ok, err = d:set(key .. i, string.rep("x", 1000))
            if not ok then return i .. " " .. err end
          end
          return "never full"
        end
        return "bad op"
      end,
      ticks = function()
        local d = neffos.shared
        local per = {}
        for i = 1, neffos.worker.count do per[#per + 1] = tostring(d:get("ticks:w" .. i) or 0) end
        return tostring(d:get("ticks:once") or 0) .. "|" .. table.concat(per, ",")
      end,
    },
  },
}
