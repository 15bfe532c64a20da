-- The fake clock and the helpers of neffos.testing (spec/author/neffos_test.test.mjs runs this).
local testing = require "neffos.testing"

describe("a fake clock", function()
  local app, v1
  before_each(function()
    app = testing.start { fake_clock = true }
    v1 = app:connect("v1")
  end)
  after_each(function() app:stop() end)

  it("fires every() only when advanced past it", function()
    assert.equal(0, app:advance(9.5))
    assert.is_nil(v1:wait("tick", 0.1))
    assert.equal(1, app:advance(0.5))
    assert.equal("1", assert(v1:wait("tick")).body)
    assert.equal(2, app:advance(20))
    assert.equal("2", assert(v1:wait("tick")).body)
    assert.equal("3", assert(v1:wait("tick")).body)
    assert.equal(30, app:now())
  end)

  it("wakes a sleeping handler", function()
    assert.True(v1:emit("later", "job"))
    assert(app:wait_log("sleeping on job"))
    app:advance(59)
    assert.is_nil(v1:wait("done", 0.1))
    app:advance(1)
    assert.equal("job", assert(v1:wait("done")).body)
  end)

  it("runs after() made by a handler", function()
    assert.equal("ok", assert(v1:ask("remind", "tea")).body)
    app:advance(5)
    assert.equal("tea", assert(v1:wait("reminder")).body)
  end)

  it("drops the old top level's timers on reload, like a real reload", function()
    assert(app:reload())
    assert.equal(1, app:advance(10))   -- the new top level's every(10) only
    assert.equal("1", assert(v1:wait("tick")).body)
  end)
end)

describe("a real clock", function()
  it("cannot be advanced", function()
    local app = testing.start()
    assert.has_error(function() app:advance(1) end)
    assert.is_nil(app:now())
    app:stop()
  end)
end)
