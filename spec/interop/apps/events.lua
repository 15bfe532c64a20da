-- Interop test app: events, ask/reply, errors, server asks, binary, headers (docs/protocol.md §5, §6, §8, §9).
local neffos = require "neffos"

local function ask_client(ns, msg, timeout)
  local answer, err = ns:ask("question", msg.body, { timeout = timeout })
  if not answer then
    return nil, "ask failed: " .. tostring(err)
  end
  return "client said: " .. answer.body
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    default = {
      echo = function(ns, msg)
        return "echo back: " .. msg.body
      end,
      emitback = function(ns, msg)
        ns:emit("reply", "emitted: " .. msg.body)
      end,
      fail = function(ns, msg)
        return nil, "something failed"
      end,
      raise = function(ns, msg)
        error("boom from lua: " .. msg.body)
      end,
      silent = function(ns, msg)
      end,
      askback = function(ns, msg)
        return ask_client(ns, msg, 5)
      end,
      askquick = function(ns, msg)
        return ask_client(ns, msg, 0.5)
      end,
      bin = function(ns, msg)
        return "got:" .. msg.body
      end,
      kind = function(ns, msg)
        return msg.binary and "binary" or "text"
      end,
      emitbin = function(ns, msg)
        ns:emit("binout", msg.body:reverse(), { binary = true })
      end,
      slow = function(ns, msg)
        neffos.sleep(tonumber(msg.body))
        return "slept " .. msg.body
      end,
      empty = function(ns, msg)
        return ""
      end,
      emptyerr = function(ns, msg)
        return nil, ""
      end,
      len = function(ns, msg)
        return tostring(#msg.body)
      end,
      header = function(ns, msg)
        local v = ns.conn.request.headers[msg.body]
        if v == nil then
          return nil, "no header " .. msg.body
        end
        return v
      end,
      ["ev;1"] = function(ns, msg)
        return ("%s|%s|%s|%s"):format(ns.namespace, msg.room, msg.event, msg.body)
      end,
    },
  },
}
