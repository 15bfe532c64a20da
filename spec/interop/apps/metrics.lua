-- Interop test app for spec/interop/metrics.test.mjs: one handler per thing a metric counts.
local neffos = require "neffos"

-- Busy for `seconds` of CPU time, so at least that long in handler code.
local function spin(seconds)
  local t = os.clock()
  while os.clock() - t < seconds do end
end

local function echo(ns, msg) return msg.body end

return neffos.server {
  endpoint = "/echo",
  on_connect = function(conn)
    if conn.request.headers["x-refuse"] then return nil, "refused" end
  end,
  namespaces = {
    v1 = {
      echo = echo,
      raise = function() error("boom") end,
      fail = function() return nil, "no" end,
      fail_late = function() neffos.sleep(0.01); error("late boom") end,
      -- Waits, then runs: the time after the wait is handler time too.
      slow = function(ns, msg) neffos.sleep(0.01); spin(tonumber(msg.body)); return "done" end,
      nap = function(ns, msg) neffos.sleep(tonumber(msg.body)); return "rested" end,
      shout = function(ns, msg) ns:broadcast("news", msg.body); return "ok" end,
      quiz = function(ns, msg)
        local answer, err = ns:ask("q", "", { timeout = tonumber(msg.body) })
        return answer and answer.body or err
      end,
      -- Asks the connection whose ID is the body.
      ask_other = function(ns, msg)
        local answer, err = neffos.servers()["/echo"]:ask { to = msg.body, namespace = "v1", event = "q", timeout = 0.2 }
        return answer and answer.body or err
      end,
      -- "N SIZE": N events "news" of SIZE bytes to this connection.
      flood = function(ns, msg)
        local n, size = msg.body:match("^(%d+) (%d+)$")
        local body = string.rep("b", tonumber(size))
        for _ = 1, tonumber(n) do ns:emit("news", body) end
        return "sent"
      end,
    },
    v2 = { echo = echo },
  },
}
