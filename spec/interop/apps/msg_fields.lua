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
    },
  },
}
