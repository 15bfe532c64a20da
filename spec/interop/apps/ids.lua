-- Interop test app: connection IDs as the app gives them (docs/protocol.md §3.5, 17.2.5).
--   id:         the X-Id header, percent-decoded (so a test can send any bytes: spaces,
--               unicode, control bytes); X-Id-Fail makes id() raise; no X-Id: the default UUID
--   on_connect: refuses the dial when the X-Refuse header is present; with X-Single, when
--               another connection has the same ID (the docs' recipe for --workers N: an
--               "online:<id>" key in neffos.shared, added in on_connect, deleted in on_disconnect)
-- Events of namespace "default" (bodies are JSON where they take arguments):
--   whoami                    the ID the server has for this connection
--   to      {to, body}        server:broadcast to one ID; answers the local receiver count
--   except  {except, body}    server:broadcast to everybody but that ID
--   ask     {to, body, timeout}  server:ask of that ID: the answer's body or the error
--   question                  counts calls: an ask's late answer must never land here
--   stats                     {question = calls} (the count is the process's: neffos.shared)
--   worker                    neffos.worker.id (a broadcast answers that worker's receivers)
--   get / get_all  (body: ID) the X-Tab header of server:get(id) / of each server:get_all(id)
--   members                   the IDs of server:members("default") as JSON
local neffos = require "neffos"
local json = neffos.json

local function decode(body)
  local t = json.decode(body)
  if type(t) == "table" then return t end
  return {}
end

-- A connection listed a moment ago may have closed since; one served by another worker then has no
-- request any more (docs/lua-api.md, "Listings and remote objects").
local function tab(conn)
  local request = conn.request
  return request and request.headers["x-tab"] or "?"
end

return neffos.server {
  endpoint = "/echo",
  id = function(req)
    if req.headers["x-id-fail"] then error("id() failed on purpose") end
    local v = req.headers["x-id"]
    if v == nil then return nil end
    return (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
  end,
  on_connect = function(conn)
    local why = conn.request.headers["x-refuse"]
    if why then return nil, "refused: " .. why end
    -- docs/lua-api.md: an app that wants one connection per ID refuses the second itself.
    if conn.request.headers["x-single"] then
      if not neffos.shared:add("online:" .. conn.id, true) then return nil, "already connected" end
      conn:set("online", true)   -- on_disconnect runs for a refused one too: only the owner deletes
    end
  end,
  on_disconnect = function(conn)
    if conn:get("online") then neffos.shared:delete("online:" .. conn.id) end
  end,
  namespaces = {
    default = {
      whoami = function(ns) return ns.id end,
      to = function(ns, msg)
        local m = decode(msg.body)
        return tostring(ns.server:broadcast { namespace = "default", event = "news", body = m.body, to = m.to })
      end,
      except = function(ns, msg)
        local m = decode(msg.body)
        return tostring(ns.server:broadcast { namespace = "default", event = "news", body = m.body,
                                              except = m.except })
      end,
      ask = function(ns, msg)
        local m = decode(msg.body)
        local r, err = ns.server:ask { to = m.to, namespace = "default", event = "question", body = m.body,
                                       timeout = m.timeout or 5 }
        if not r then return nil, "ask failed: " .. tostring(err) end
        return r.body
      end,
      question = function() neffos.shared:incr("ids:questions", 1, 0) end,
      stats = function() return json.encode { question = neffos.shared:get("ids:questions") or 0 } end,
      worker = function() return tostring(neffos.worker.id) end,
      get = function(ns, msg)
        local c = ns.server:get(msg.body)
        return c and tab(c) or "nil"
      end,
      get_all = function(ns, msg)
        local t = {}
        for _, c in ipairs(ns.server:get_all(msg.body)) do t[#t + 1] = tab(c) end
        return table.concat(t, ",")
      end,
      members = function(ns)
        local ids = {}
        for i, member in ipairs(ns.server:members("default")) do ids[i] = member.id end
        return json.encode(ids)
      end,
    },
  },
}
