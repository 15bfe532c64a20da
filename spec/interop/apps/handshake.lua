-- Interop test app: the connection handshake (docs/protocol.md §4).
--   id:         the connection ID comes from the X-Username header (nil: the default UUID v4)
--   on_connect: refuses the dial when the X-Refuse header is present, with a text naming it
local neffos = require "neffos"

return neffos.server {
  endpoint = "/echo",
  id = function(req)
    return req.headers["x-username"]
  end,
  on_connect = function(conn)
    local why = conn.request.headers["x-refuse"]
    if why then
      return nil, "rejected by on_connect: " .. why
    end
  end,
  namespaces = {
    default = {
      whoami = function(ns, msg)
        return ns.id
      end,
    },
  },
}
