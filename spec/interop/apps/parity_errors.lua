-- Parity test app: errors (docs/protocol.md §9, §17.3.4) and the open/close pairing (docs/lua-api.md:
-- on_disconnect runs once for every connection whose on_connect ran, refused ones included).
local neffos = require "neffos"

-- Counts per ID in neffos.shared: with --workers N the "pairs" request runs on any worker, and
-- neffos.state is per worker.
local shared = neffos.shared

return neffos.server {
  endpoint = "/echo",
  id = function(req) return req.headers["x-username"] end,
  on_connect = function(conn)
    shared:incr("opened:" .. conn.id, 1, 0)
    local how = conn.request.headers["x-how"]
    if how == "refuse" then
      return nil, "go away: " .. conn.id
    elseif how == "close" then
      conn:close(4003, "closed in on_connect")
    elseif how == "close-refuse" then
      conn:close(4004, "both")
      return nil, "refused after close"
    elseif how == "connect-refuse" then
      conn:connect("default")          -- deferred until "A", which never comes
      return nil, "refused after a forced connect"
    elseif how == "raise" then
      error("on_connect blew up")
    end
  end,
  on_disconnect = function(conn)
    shared:incr("closed:" .. conn.id, 1, 0)
  end,
  namespaces = {
    default = {
      -- "opened closed" counts of an ID
      pairs = function(ns, msg)
        return ("%d %d"):format(shared:get("opened:" .. msg.body) or 0, shared:get("closed:" .. msg.body) or 0)
      end,
      fail_semicolon = function() return nil, "a;b;c" end,
      fail_lines = function() return nil, "line 1\nline 2 κόσμε" end,
      known = function(ns, msg)
        local known = { bad_namespace = neffos.ErrBadNamespace, bad_room = neffos.ErrBadRoom, write = neffos.ErrWrite }
        return nil, known[msg.body]
      end,
      -- the CloseError equivalent: answer with an error, then close with a code and reason
      fatal = function(ns, msg)
        local conn = ns.conn
        neffos.after(0, function() conn:close(4000, "fatal: " .. msg.body) end)
        return nil, "fatal: " .. msg.body
      end,
      -- close first, then return: the reply cannot be sent any more
      close_then_reply = function(ns, msg)
        ns.conn:close(4001, "closed")
        return "never sent"
      end,
    },
  },
}
