-- Test app of spec/workers/remote_attack: a msg copied to another worker unmarshals with its
-- endpoint's codec, also one received before a hot reload (bindings/lua_codec.c,
-- lcodec_meta_path). The codec is not JSON, so a copy that got the default codec cannot decode.
local neffos = require "neffos"

local function answer(s) return neffos.worker.id .. ":" .. s end

-- "to|P:text" <-> { to = to, text = text }
local codec = {
  encode = function(v) return v.to .. "|P:" .. v.text end,
  decode = function(s)
    local to, text = s:match("^(.-)|P:(.*)$")
    if not to then return nil, "not a P body" end
    return { to = to, text = text }
  end,
}

local function decoded(m)
  local v, err = m:unmarshal()
  return v and v.text or tostring(err)
end

return neffos.server {
  endpoint = "/codec",
  codec = codec,
  id = function(req) return req.headers["x-username"] end,
  namespaces = {
    w = {
      worker = function() return tostring(neffos.worker.id) end,
      -- "to|P:text": this msg kept on to's connection (another worker's), and in neffos.state
      keep = function(ns, msg)
        local c = ns.server:get(msg:unmarshal().to)
        c:set("msg", msg)
        neffos.state.kept = msg
        return answer((c.remote and "remote " or "local ") .. decoded(c:get("msg")))
      end,
      -- "to": the msg kept there, read back; the one kept here, read there and back
      fetch = function(ns, msg)
        local c = ns.server:get(msg.body)
        local back = c:get("msg")
        c:set("mine", neffos.state.kept)
        return answer(decoded(back) .. " " .. decoded(c:get("mine")))
      end,
    },
  },
}
