-- Interop test app: what a handler's msg holds (docs/lua-api.md, "The message msg"): every
-- field reads as documented, and the table itself holds only those that differ from their
-- defaults (bindings/lua_message.c).
local neffos = require "neffos"

local function describe(msg)
  local raw = {}
  for k in pairs(msg) do raw[#raw + 1] = k end
  table.sort(raw)
  return ("room=%q binary=%s local=%s forced=%s native=%s err=%s token=%s unmarshal=%s raw=%s"):format(
    msg.room, tostring(msg.binary), tostring(msg.is_local), tostring(msg.is_forced), tostring(msg.is_native),
    tostring(msg.err), msg.token and "set" or "nil", type(msg.unmarshal), table.concat(raw, ","))
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    fields = {
      describe = function(ns, msg)
        local text = describe(msg)
        if not msg.token then ns:emit("described", text) end
        return text
      end,
      -- Asks the client back: the answer msg is built the same way.
      ask_back = function(ns, msg)
        local answer, err = ns:ask("question", msg.body)
        if not answer then return nil, err end
        return describe(answer) .. " body=" .. answer.body
      end,
      -- docs/lua-api.md's relay to the others: msg.except set on the received msg.
      relay_others = function(ns, msg)
        msg.except = ns
        return ns.server:broadcast(msg) and "relayed"
      end,
      -- A relay: the msg as received, an ask's token and all, goes to every connection of the
      -- namespace (docs/lua-api.md, server:broadcast). A plain table with a token is still refused.
      relay = function(ns, msg)
        local n, err = ns.server:broadcast(msg)
        if not n then return nil, err end
        local ok, refused = pcall(ns.server.broadcast, ns.server, { namespace = "fields", event = "relay", token = "x" })
        -- n counts this worker's receivers only (with --workers 2 the other client may be elsewhere)
        return ("relayed to %s; a plain table with a token: %s"):format(n >= 1 and "some" or "none",
          ok and "sent" or refused:match("unknown option token") or refused)
      end,
    },
  },
}
