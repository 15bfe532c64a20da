-- Interop app of the seeds' API extras (docs/lua-api.md): a controller (Go's
-- NewStruct) with per-connection instances, tables as bodies through the
-- JSON codec and a binary codec (Go's Marshal / Unmarshal), on_upgrade_error
-- (Go's OnUpgradeError) and conn.was_reconnected (Go's WasReconnected).
local neffos = require "neffos"

-- The refusals told, in neffos.shared: with --workers N each worker hears its own refused requests,
-- and the test reads them on whichever worker its connection landed (neffos.state is per worker).
local shared = neffos.shared

-- A controller: the methods named on_* are events (EventTrimPrefixMatcher),
-- OnNamespaceConnected is the system event, `tag` is a plain method.
local Chat = { greeting = "hi" }

function Chat:OnNamespaceConnected()
  self.ns:emit("welcome", self.greeting .. " " .. self.name)
end

function Chat:tag() return self.name .. "#" .. self.said end

function Chat:on_say(msg)
  self.said = self.said + 1
  return self:tag() .. ": " .. msg.body
end

local chat = neffos.controller(Chat, {
  matcher = neffos.trim_prefix_matcher("on_"),
  new = function(ns)
    local name = ns.conn.request.headers["x-user"]
    if name == "nobody" then return nil, "who are you?" end
    return { name = name or ns.id, said = 0 }
  end,
})

-- A binary codec (what a MessagePack or protobuf module would be): a point
-- { n = integer, name = string } as 4 + 2 + #name bytes.
local point = {
  binary = true,
  encode = function(v) return string.pack(">i4s2", v.n, v.name) end,
  decode = function(s)
    local ok, n, name = pcall(string.unpack, ">i4s2", s)
    if not ok then return nil, "not a point" end
    return { n = n, name = name }
  end,
}

return {
  neffos.server {
    endpoint = "/echo",
    id = function(req)
      if req.headers["x-empty-id"] then return "" end
      return nil
    end,
    on_connect = function(conn)
      if conn.request.headers["x-refuse"] then return nil, "refused by the app" end
    end,
    on_upgrade_error = function(req, reason, text)
      local n = shared:incr("refusals", 1, 0)
      shared:set("refusal:" .. n, ("%s|%s|%s|%s"):format(reason, text, req.path or "", req.headers.origin or ""))
    end,
    namespaces = {
      chat = chat,
      json = {
        echo = function(_, msg)
          local v, err = msg:unmarshal()
          if v == nil then return nil, err end
          v.seen = true
          return v                                   -- a table: the JSON reply
        end,
        push = function(ns, msg)
          local ok, err = ns:emit("pushed", { n = tonumber(msg.body), list = { 1, 2, 3 } })
          if ok == nil then return nil, err end
        end,
        bad = function(ns)
          return ns:emit("never", { f = print })     -- JSON cannot encode a function: nil, err
        end,
        marshal = function() return neffos.marshal { a = 1 } end,
        spread = function(ns)
          local room = assert(ns:join_room("r"))
          assert(room:emit("in_room", { room = room.name }))
          ns:broadcast("all", { from = "ns" })
          ns.server:broadcast { namespace = "json", event = "all", body = { from = "server" } }
        end,
      },
      status = {
        status = function(ns)
          return ("%s %d"):format(tostring(ns.conn.was_reconnected), ns.conn.reconnect_tries)
        end,
        refusals = function()
          local lines = {}
          for i = 1, shared:get("refusals") or 0 do lines[#lines + 1] = shared:get("refusal:" .. i) end
          return table.concat(lines, "\n")
        end,
      },
    },
  },
  neffos.server {
    endpoint = "/bin",
    codec = point,
    namespaces = {
      b = {
        double = function(ns, msg)
          local v, err = msg:unmarshal()
          if v == nil then return ns:emit("error", err) end
          ns:emit("doubled", { n = v.n * 2, name = v.name })
        end,
      },
    },
  },
}
