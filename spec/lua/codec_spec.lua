-- Specs of scripts/neffos/codec.lua (Go's Marshal / Message.Unmarshal) and of
-- the codec and on_upgrade_error fields of neffos.server, under a plain lua5.4.
local neffos = require "neffos"
local codec = require "neffos.codec"

local upper = {   -- a codec of its own: strings upper-cased, a binary flag
  binary = true,
  encode = function(v) return v.text and v.text:upper() or nil, "no text" end,
  decode = function(s) if s == "" then return nil, "empty" end return { text = s:lower() } end,
}

describe("neffos.codec", function()
  it("is JSON by default, like Go's DefaultMarshaler", function()
    local bytes, binary = codec.encode_body(nil, { a = { 1, 2 } })
    assert.equal('{"a":[1,2]}', bytes)
    assert.is_false(binary)
    assert.same({ a = { 1, 2 } }, codec.decode_body(nil, '{"a":[1,2]}'))
    assert.equal('{"a":1}', neffos.marshal { a = 1 })
    assert.same({ a = 1 }, neffos.unmarshal '{"a":1}')
  end)

  it("returns nil, err for what cannot be encoded or decoded, never raises", function()
    local v, err = codec.encode_body(nil, { f = print })
    assert.is_nil(v); assert.matches("^encode: ", err)
    v, err = codec.decode_body(nil, "{nope")
    assert.is_nil(v); assert.matches("^decode: ", err)
    v, err = neffos.unmarshal(42)
    assert.is_nil(v); assert.equal("unmarshal: want a string (got number)", err)
    local raising = { encode = function() error("boom", 0) end, decode = function() error("bang", 0) end }
    v, err = codec.encode_body({ codec = raising }, {})
    assert.is_nil(v); assert.equal("encode: boom", err)
    v, err = codec.decode_body({ codec = raising }, "x")
    assert.is_nil(v); assert.equal("decode: bang", err)
    v, err = codec.encode_body({ codec = { encode = function() return 7 end, decode = print } }, {})
    assert.is_nil(v); assert.equal("encode: the codec returned a number, not a string", err)
  end)

  it("uses the server's codec, and says whether it makes binary frames", function()
    local desc = { codec = upper }
    local bytes, binary = codec.encode_body(desc, { text = "hi" })
    assert.equal("HI", bytes); assert.is_true(binary)
    local v, err = codec.encode_body(desc, {})
    assert.is_nil(v); assert.equal("encode: no text", err)
    assert.same({ text = "hi" }, codec.decode_body(desc, "HI"))
  end)

  it("gives received messages msg:unmarshal() with their server's codec", function()
    local desc = neffos.server { codec = upper, namespaces = { v1 = {} } }
    codec.prepare(desc)
    local msg = setmetatable({ body = "HELLO" }, codec.meta[desc])
    assert.same({ text = "hello" }, msg:unmarshal())
    local empty = setmetatable({ body = "" }, codec.meta[desc])
    local v, err = empty:unmarshal()
    assert.is_nil(v); assert.equal("decode: empty", err)
    local json = setmetatable({ body = '{"x":true}' }, codec.meta.default)
    assert.same({ x = true }, json:unmarshal())
  end)

  it("is validated by neffos.server", function()
    local function bad(c)
      local ok, err = pcall(neffos.server, { codec = c, namespaces = {} })
      assert.is_false(ok)
      return err
    end
    assert.matches("field codec must be a table", bad("json"))
    assert.matches("codec needs both encode and decode functions", bad({ encode = print }))
    assert.matches("codec: unknown field binry", bad({ encode = print, decode = print, binry = true }))
    assert.matches("codec.binary must be a boolean", bad({ encode = print, decode = print, binary = 1 }))
  end)

  it("accepts on_upgrade_error as a function only", function()
    assert.is_true(neffos.is_server(neffos.server { on_upgrade_error = print, namespaces = {} }))
    local ok, err = pcall(neffos.server, { on_upgrade_error = true, namespaces = {} })
    assert.is_false(ok)
    assert.matches("field on_upgrade_error must be a function", err)
  end)
end)
