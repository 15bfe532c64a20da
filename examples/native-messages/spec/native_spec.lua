-- neffos test examples/native-messages
local testing = require "neffos.testing"

describe("native messages", function()
  local app, conn, raw
  before_each(function()
    app = testing.start()
    conn = app:dial({}, { native = true })   -- no neffos handshake: raw frames
    raw = conn:namespace("")
  end)
  after_each(function() app:stop() end)

  it("answers ping with pong", function()
    assert.True(conn:write("ping"))
    local msg = assert(raw:wait("_OnNativeMessage"))
    assert.equal("pong", msg.body)
    assert.False(msg.binary)
  end)

  it("echoes text and binary frames in their type", function()
    conn:write("hello")
    assert.equal("hello", assert(raw:wait("_OnNativeMessage")).body)
    conn:write("\0\1\2\255", { binary = true })
    local msg = assert(raw:wait("_OnNativeMessage"))
    assert.equal("\0\1\2\255", msg.body)
    assert.True(msg.binary)
    assert.truthy(app:wait_log("got: 4 bytes", 2, true))
  end)
end)
