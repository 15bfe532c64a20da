-- The app of spec/author/kit/spec: timers and sleeps for the fake clock of `neffos test`.
local neffos = require "neffos"
local ticks = 0

neffos.every(10, function()
  ticks = ticks + 1
  for _, server in pairs(neffos.servers()) do
    server:broadcast { namespace = "v1", event = "tick", body = tostring(ticks) }
  end
end)

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      later = function(ns, msg)
        neffos.log.info("sleeping on %s", msg.body)
        neffos.sleep(60)
        ns:emit("done", msg.body)
      end,
      remind = function(ns, msg)
        neffos.after(5, function() ns:emit("reminder", msg.body) end)
        return "ok"
      end,
      ticks = function() return tostring(ticks) end,
    },
  },
}
