-- neffos test examples/auth
local testing = require "neffos.testing"
local client = require "neffos.client"

describe("auth", function()
  local app
  before_each(function() app = testing.start() end)
  after_each(function() app:stop() end)

  local function as(token)
    return app:connect("default", nil, { headers = { Authorization = "Bearer " .. token } })
  end

  it("refuses a dial without a valid token, with the reason", function()
    local conn, err = client.dial(app:url(), { default = {} }, { timeout = 5 })
    assert.is_nil(conn)
    assert.matches("unauthorized", err, 1, true)
    assert.truthy(app:wait_log("no valid token", 2, true))
  end)

  it("names the connection after the token's user", function()
    assert.equal("alice", as("alice-token").id)
  end)

  it("lets a token join only its rooms", function()
    local bob = as("bob-token")
    assert(bob:join_room("lobby"))
    local room, err = bob:join_room("dev")
    assert.is_nil(room)
    assert.equal('forbidden: bob may not join room "dev"', err)
    assert.equal('["lobby"]', assert(bob:ask("rooms", "")).body)
  end)
end)
