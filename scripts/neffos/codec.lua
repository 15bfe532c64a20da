-- neffos/codec.lua - Go neffos's Marshal / Message.Unmarshal in Lua: a body
-- that is not a string (a table, a boolean) is encoded with the server's
-- codec where the host sends it (ns:emit, room:emit, ns:ask, broadcasts, a
-- handler's return value), and msg:unmarshal() decodes a received body.
--
-- A codec is { encode = fn(value) -> string | nil, err,
--              decode = fn(string) -> value | nil, err,
--              binary = true | false (frames of encoded bodies; default false) }
-- set per server (`codec =` in neffos.server); JSON (lua-cjson) by default,
-- like Go's DefaultMarshaler / DefaultUnmarshaler.
--
-- Pure Lua: the host calls encode_body and reads `meta` (bindings/lua_codec.c).

local M = {}

local function missing() return nil, "lua-cjson is not installed (set the server's codec)" end

do
  local ok, cjson = pcall(require, "cjson.safe")
  if ok then
    M.json = { encode = cjson.encode, decode = cjson.decode, binary = false }
  else
    M.json = { encode = missing, decode = missing, binary = false }
  end
end

M.default = M.json

-- Returns nil when c is a valid codec, else a message.
function M.check(c)
  if type(c) ~= "table" then return ("codec must be a table (got %s)"):format(type(c)) end
  for k, v in pairs(c) do
    if k ~= "encode" and k ~= "decode" and k ~= "binary" then
      return ("codec: unknown field %s (known: encode, decode, binary)"):format(tostring(k))
    end
    local want = k == "binary" and "boolean" or "function"
    if type(v) ~= want then return ("codec.%s must be a %s (got %s)"):format(k, want, type(v)) end
  end
  if not c.encode or not c.decode then return "codec needs both encode and decode functions" end
  return nil
end

local function codec_of(desc)
  return type(desc) == "table" and desc.codec or M.default
end

-- A codec's result as (value) or (nil, err); errors raised are caught, so a
-- bad body never fails the handler by surprise.
local function call(what, fn, arg)
  local ok, v, err = pcall(fn, arg)
  if not ok then return nil, ("%s: %s"):format(what, tostring(v)) end
  if v == nil then return nil, ("%s: %s"):format(what, tostring(err or "failed")) end
  return v
end

--- The bytes of value under desc's codec, and whether they go in a binary frame; or nil, err.
function M.encode_body(desc, value)
  local c = codec_of(desc)
  local bytes, err = call("encode", c.encode, value)
  if bytes == nil then return nil, err end
  if type(bytes) ~= "string" then
    return nil, ("encode: the codec returned a %s, not a string"):format(type(bytes))
  end
  return bytes, c.binary == true
end

--- The value of bytes under desc's codec, or nil, err.
function M.decode_body(desc, bytes)
  return call("decode", codec_of(desc).decode, bytes or "")
end

-- Metatables of received messages, one per server description (weak: a
-- reload's old descriptions go), found by the host without calling Lua.
-- meta.default serves messages whose server is unknown.
M.meta = setmetatable({}, { __mode = "k" })

-- Their __index also holds the defaults of the fields the host leaves unset
-- when they have them (bindings/lua_message.c, lmsg_push_served): msg.room is ""
-- and the flags are false without a table slot each.
local function message_meta(desc)
  local methods = {
    --- msg:unmarshal() -> the body decoded with the server's codec, or nil, err.
    unmarshal = function(msg) return M.decode_body(desc, msg.body) end,
    room = "", binary = false, is_local = false, is_forced = false, is_native = false,
  }
  -- __name marks a message for the host (bindings/lua_message.c, lmsg_is): server:broadcast(msg)
  -- takes it as it came, and a copy to another worker stays a msg. __endpoint names its server
  -- for that copy, which gets the message metatable of that endpoint there
  -- (bindings/lua_codec.c, lcodec_meta_path): after a reload too, when this desc is no longer
  -- the one served.
  return { __index = methods, __metatable = "locked", __name = "neffos.msg",
           __endpoint = desc and desc.endpoint }
end

M.meta.default = message_meta(nil)

--- Prepares desc (a validated server description) for the host.
function M.prepare(desc)
  M.meta[desc] = message_meta(desc)
end

--- Go's neffos.Marshal: value as bytes under the default codec (or desc's), or nil, err.
function M.marshal(value, desc)
  local bytes, err = M.encode_body(desc, value)
  if bytes == nil then return nil, err end
  return bytes
end

--- Go's Message.Unmarshal on bytes: the value under the default codec (or desc's), or nil, err.
function M.unmarshal(bytes, desc)
  if type(bytes) ~= "string" then return nil, ("unmarshal: want a string (got %s)"):format(type(bytes)) end
  return M.decode_body(desc, bytes)
end

return M
