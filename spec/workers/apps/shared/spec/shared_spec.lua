-- neffos test spec/workers/apps/shared: each app started gets its own, fresh neffos.shared.
local testing = require "neffos.testing"

describe("neffos.shared under neffos test", function()
  it("counts, and a new start begins from nothing", function()
    for _ = 1, 2 do
      local app = testing.start()
      local v1 = app:connect("v1")
      assert.equal("1", assert(v1:ask("hit")).body)
      assert.equal("2", assert(v1:ask("hit")).body)
      app:stop()
    end
  end)
end)
