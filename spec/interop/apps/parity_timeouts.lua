-- Parity test app: read timeout (docs/protocol.md §12.4, §17.6.3; docs/lua-api.md `timeouts`).
-- Events are noted per ID in neffos.shared (shared_log.lua): with --workers N the watcher reading
-- them may sit on another worker than the connection timed out.
local neffos = require "neffos"
local shared_log = require "shared_log"

local function note(id, s) shared_log("log:" .. id).add(s) end

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  timeouts = { read = 1 },
  on_disconnect = function(conn) note(conn.id, "on_disconnect") end,
  namespaces = {
    default = {
      [neffos.OnNamespaceDisconnect] = function(ns, msg)
        note(ns.id, ("disconnect forced=%s local=%s"):format(tostring(msg.is_forced), tostring(msg.is_local)))
      end,
      echo = function(ns, msg) return "echo: " .. msg.body end,
      log = function(ns, msg) return table.concat(shared_log("log:" .. msg.body).list(), "\n") end,
      -- the server writing does not keep a silent client alive: only what it reads counts
      tick = function(ns, msg)
        local conn = ns.conn
        local timer
        timer = neffos.every(0.2, function()
          local now = conn:namespace("default")
          if now then now:emit("tick", "") else timer:cancel() end
        end)
      end,
    },
  },
}
