-- Parity test app: server asks (docs/protocol.md §8.2, §8.4, §17.4; docs/lua-api.md server:ask / ns:ask).
local neffos = require "neffos"

local function split(s)
  local a, b = s:match("^(.-)|(.*)$")
  return a or s, b or ""
end

-- always a reply body (not an error reply), so the test reads the outcome either way
local function result(answer, err)
  if not answer then return "ask failed: " .. tostring(err) end
  return "answer: " .. answer.body
end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    q = {
      -- "id|timeout|question": asks another connection by ID from this handler
      ask_id = function(ns, msg)
        local id, rest = split(msg.body)
        local timeout, question = split(rest)
        return result(ns.server:ask { to = id, namespace = "q", event = "question", body = question,
                                      timeout = tonumber(timeout) })
      end,
      -- the same from a timer; the outcome is emitted back to the caller as `later`
      ask_id_later = function(ns, msg)
        local id, rest = split(msg.body)
        local timeout, question = split(rest)
        local server, caller = ns.server, ns.id
        neffos.after(0.05, function()
          local body = result(server:ask { to = id, namespace = "q", event = "question", body = question,
                                                timeout = tonumber(timeout) })
          server:broadcast { namespace = "q", to = caller, event = "later", body = body }
        end)
        return "scheduled"
      end,
      -- ask-back: "timeout|question" to this handler's own client
      askback = function(ns, msg)
        local timeout, question = split(msg.body)
        return result(ns:ask("question", question, { timeout = tonumber(timeout) }))
      end,
      -- ask-back that reports how the answer came: "binary" or "text", and its bytes
      askback_kind = function(ns, msg)
        local answer, err = ns:ask("question", msg.body, { timeout = 2 })
        if not answer then return "ask failed: " .. tostring(err) end
        return (answer.binary and "binary:" or "text:") .. answer.body
      end,
      -- two ask-backs in a row, then an answer built from both
      askback_twice = function(ns, msg)
        local a = assert(ns:ask("question", msg.body .. "-1", { timeout = 2 }))
        local b = assert(ns:ask("question", msg.body .. "-2", { timeout = 2 }))
        return a.body .. "+" .. b.body
      end,
      echo = function(ns, msg) return "echo: " .. msg.body end,
    },
  },
}
