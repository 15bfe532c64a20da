-- Test app of spec/workers/crossing.test.mjs: what crosses from one worker to another keeps what
-- one loop gives (order, frame type). Replies start with the worker that ran the handler.
local neffos = require "neffos"

local kept   -- "keep": a connection of another worker, kept for "call_kept"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    w = {
      worker = function() return tostring(neffos.worker.id) end,
      -- "id": a broadcast to that ID, then an emit through its ns (a remote one on another
      -- worker): it must get "1" then "2", as from one loop
      then_remote = function(ns, msg)
        local c = ns.server:get(msg.body)
        if not c then return "not found" end
        local target = c:namespace("w")
        ns.server:broadcast { namespace = "w", to = msg.body, event = "seq", body = "1" }
        target:emit("seq", "2")
        return tostring(c.remote)
      end,
      -- "id": that connection's ns (remote on another worker) broadcasts to the namespace; once the
      -- call returned, an emit to the asker: it must get "1" (the broadcast) then "2"
      remote_then = function(ns, msg)
        local c = ns.server:get(msg.body)
        if not c then return "not found" end
        c:namespace("w"):broadcast("seq", "1")
        ns:emit("seq", "2")
        return tostring(c.remote)
      end,
      -- "id|question": server:ask by ID in a binary frame; "<answer>|<answer's msg.binary>"
      ask_binary = function(ns, msg)
        local to, question = split(msg.body)
        local answer, err = ns.server:ask { to = to, namespace = "w", event = "question", body = question,
                                            binary = true, timeout = 5 }
        if not answer then return "failed: " .. tostring(err) end
        return answer.body .. "|" .. tostring(answer.binary)
      end,
      -- "id|seconds": server:ask by ID with that timeout; "<answer>" or "failed: <err>"
      ask_within = function(ns, msg)
        local to, secs = split(msg.body)
        local answer, err = ns.server:ask { to = to, namespace = "w", event = "question", body = "?",
                                            timeout = tonumber(secs) }
        if not answer then return "failed: " .. tostring(err) end
        return answer.body
      end,
      -- this worker stops turning its loop until "release" (at most 20 s): what the other workers
      -- post to it waits in its queue meanwhile
      hold = function()
        neffos.shared:set("holding", true)
        local deadline = os.clock() + 20
        while not neffos.shared:get("release") and os.clock() < deadline do end
        return "held"
      end,
      -- "id": keep that connection (a remote object when another worker serves it)
      keep = function(ns, msg)
        kept = ns.server:get(msg.body)
        return tostring(kept and kept.remote)
      end,
      -- a remote call on the kept connection: "<is_closed> <err>"
      call_kept = function()
        local closed, err = kept:is_closed()
        return tostring(closed) .. " " .. tostring(err)
      end,
      -- "n|bytes": n remote writes of that many bytes to the kept connection, one after the other;
      -- what each returned ("ok", or its err), separated by "|"
      write_kept = function(ns, msg)
        local n, size = split(msg.body)
        local out, big = {}, string.rep("x", tonumber(size))
        for i = 1, tonumber(n) do
          local ok, err = kept:write(big)
          out[i] = ok and "ok" or tostring(err)
        end
        return table.concat(out, "|")
      end,
      -- "id": a listing (waits for every worker): "<id or nil> <err>"
      get_id = function(ns, msg)
        local c, err = ns.server:get(msg.body)
        return tostring(c and c.id) .. " " .. tostring(err)
      end,
      holding = function() return tostring(neffos.shared:get("holding")) end,
      release = function() return tostring((neffos.shared:set("release", true))) end,
      -- "n|first|text": n broadcasts "<first> text", "<first + 1> text", ... from one run (they
      -- leave together, one batch) to every other connection of the namespace
      burst = function(ns, msg)
        local n, first, text = msg.body:match("^(%d+)|(%d+)|(.*)$")
        for i = 0, tonumber(n) - 1 do
          ns.server:broadcast { namespace = "w", event = "chat", body = (first + i) .. " " .. text, except = ns }
        end
        return "ok"
      end,
    },
  },
}
