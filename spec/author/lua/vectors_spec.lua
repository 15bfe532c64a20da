-- The Lua client against the recorded frames of spec/vectors (run by
-- spec/author/client_vectors.test.mjs, whose raw server replays them and
-- checks every frame this client sends, byte for byte but the "$n" tokens).
local testing = require "neffos.testing"
local client = require "neffos.client"
local neffos = { OnRoomJoined = "_OnRoomJoined", OnRoomLeft = "_OnRoomLeft" }

describe("the Lua client on the recorded frames", function()
  it("speaks them", function()
    local url = assert(os.getenv("VECTORS_URL"), "VECTORS_URL")
    local got = { joined = {}, left = {} }
    local conn = assert(client.dial(url, {
      default = {
        chat = function(_, msg) got.chat = msg.body end,
        question = function(_, msg)
          if msg.body == "err" then return nil, "client says no" end
          return "js-answer:" .. msg.body
        end,
        [neffos.OnRoomJoined] = function(_, msg) got.joined[#got.joined + 1] = msg.room end,
        [neffos.OnRoomLeft] = function(_, msg) got.left[#got.left + 1] = msg.room end,
      },
      forced = { done = function() got.done = true end },
    }, { timeout = 5 }))
    assert.equal("n1-conn1", conn.id)                                   -- A01, A02
    local ns = assert(conn:connect("default"))                          -- D01
    assert.True(ns:emit("chat", "hi;there"))                            -- G01
    assert(testing.wait(function() return got.chat end))
    assert.equal("echo:hi;there", got.chat)
    assert.equal("pong:ping", assert(ns:ask("ask", "ping")).body)       -- G02
    local reply, err = ns:ask("fail", "")                               -- G03
    assert.is_nil(reply)
    assert.equal("something failed", err)
    local room = assert(ns:join_room("room1"))                          -- F01
    assert.same({ "room1" }, got.joined)
    assert.True(room:emit("chat", "to room"))                           -- F05
    assert.True(room:leave())                                           -- F06
    assert.same({ "room1" }, got.left)
    local _, nerr = conn:connect("nope")                                -- refused locally, nothing sent
    assert.equal("bad namespace", nerr)
    -- The server's turn: H01, H02, F09, F11, D09, D10, E04, then "done" on "forced".
    assert.True(ns:emit("go", ""))
    assert(testing.wait(function() return got.done end))
    assert.same({ "room1", "sroom" }, got.joined)
    assert.same({ "room1", "sroom" }, got.left)
    assert.truthy(conn:namespace("forced"))
    assert.is_nil(conn:namespace("default"))                            -- E04
    assert.False(ns:is_connected())
    conn:close()
    assert(conn:wait_closed())
  end)
end)
