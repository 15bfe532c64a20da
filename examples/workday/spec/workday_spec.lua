-- neffos test examples/workday
local testing = require "neffos.testing"

describe("workday", function()
  local app, ns
  setup(function()
    app = testing.start()
    ns = app:connect("default")
  end)
  teardown(function() app:stop() end)

  local function ask(date) return ns:ask("workday", date) end

  it("names the weekday", function()
    assert.equal("it's Monday, do your job.", assert(ask("11-30-2026")).body)
    assert.equal("it's Thursday, do your job.", assert(ask("02-29-2024")).body)
  end)

  it("gives weekends off", function()
    local reply, err = ask("11-29-2026")
    assert.is_nil(reply)
    assert.equal("day off", err)
  end)

  it("says why a date is invalid", function()
    local _, err = ask("02-29-2026")
    assert.equal('parsing time "02-29-2026": day out of range', err)
    _, err = ask("2026-11-30")
    assert.equal('parsing time "2026-11-30": want mm-dd-yyyy', err)
  end)
end)
