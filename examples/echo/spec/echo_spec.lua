-- neffos test examples/echo
local testing = require "neffos.testing"

describe("echo", function()
  local app
  before_each(function() app = testing.start() end)
  after_each(function() app:stop() end)

  it("answers echo with the body", function()
    local v1 = app:connect("v1")
    assert.equal("echo back: hello", assert(v1:ask("echo", "hello")).body)
  end)

  it("logs what it echoes, with the connection ID", function()
    local v1 = app:connect("v1")
    assert(v1:ask("echo", "log me"))
    assert.truthy(app:wait_log("[" .. v1.id .. "] echo: log me", 2, true))
  end)

  it("serves the new code after a reload, on the same connection", function()
    local v1 = app:connect("v1")
    assert(app:reload { ["app.lua"] = [[
      local neffos = require "neffos"
      return neffos.server { endpoint = "/echo", namespaces = { v1 = {
        echo = function(_, msg) return "v2: " .. msg.body end } } }
    ]] })
    assert.equal("v2: hi", assert(v1:ask("echo", "hi")).body)
  end)

  it("keeps serving when a reload is broken, and says where", function()
    local v1 = app:connect("v1")
    local ok, err = app:reload { ["app.lua"] = "return neffos.server {" }
    assert.is_nil(ok)
    assert.matches("app.lua:1:", err, 1, true)
    assert.equal("echo back: still", assert(v1:ask("echo", "still")).body)
  end)
end)
