-- Parity test app: write timeout (docs/lua-api.md `timeouts.write`): a reader that stops reading
-- while 12 MiB are queued for it is dropped after about 1 s.
-- The closes per ID are counted in neffos.shared: with --workers N the watcher asking may sit on
-- another worker than the slow reader.
local neffos = require "neffos"
local shared = neffos.shared
return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  timeouts = { write = 1 },
  on_disconnect = function(conn) shared:incr("closed:" .. conn.id, 1, 0) end,
  namespaces = { default = {
    flood = function(ns, msg)
      local chunk = ("x"):rep(256 * 1024)
      local n = 0
      for i = 1, tonumber(msg.body) do if ns:emit("big", chunk) then n = n + 1 end end
      return tostring(n)
    end,
    closed = function(ns, msg) return tostring(math.tointeger(shared:get("closed:" .. msg.body)) or 0) end,
  } },
}
