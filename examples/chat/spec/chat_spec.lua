-- neffos test examples/chat
local testing = require "neffos.testing"
local json = require "cjson"

describe("chat", function()
  local app
  before_each(function() app = testing.start() end)
  after_each(function() app:stop() end)

  local function user(name)
    return app:connect("default", nil, { headers = { ["X-Username"] = name } })
  end

  it("uses the X-Username header as the connection ID", function()
    assert.equal("alice", user("alice").id)
  end)

  it("tells the room who joined, and relays chat to the others only", function()
    local alice, bob = user("alice"), user("bob")
    local room = assert(alice:join_room("lobby"))
    assert(bob:join_room("lobby"))
    assert.equal("bob joined the room", assert(room:wait("notify")).body)

    room:emit("chat", json.encode { text = "hi bob" })
    local msg = assert(bob:wait("chat"))
    assert.same({ from = "alice", text = "hi bob" }, json.decode(msg.body))
    local none = alice:wait("chat", 0.2)
    assert.is_nil(none)
  end)

  it("says goodbye when someone leaves", function()
    local alice, bob = user("alice"), user("bob")
    assert(alice:join_room("lobby"))
    local broom = assert(bob:join_room("lobby"))
    assert.equal("bob joined the room", assert(alice:wait("notify")).body)
    assert(broom:leave())
    assert.equal("bob left the room", assert(alice:wait("notify")).body)
  end)

  it("refuses chat outside a room", function()
    local alice = user("alice")
    local reply, err = alice.conn:_ask("default", "", "chat", json.encode { text = "x" })
    assert.is_nil(reply)
    assert.equal("join a room first", err)
  end)
end)
