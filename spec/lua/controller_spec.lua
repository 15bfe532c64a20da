-- Specs of scripts/neffos/controller.lua (Go's NewStruct) under a plain lua5.4,
-- with a stand-in for the host's ns and conn (a per-connection store).
local neffos = require "neffos"

local function fake_conn(id)
  local store = {}
  return { id = id, get = function(_, k) return store[k] end, set = function(_, k, v) store[k] = v end,
           store = store }
end

local function fake_ns(conn, name)
  return { id = conn.id, conn = conn, namespace = name or "chat" }
end

describe("neffos.controller", function()
  it("registers every method as an event, called with a per-connection self", function()
    local Chat = { suffix = "!" }
    function Chat:chat(msg) self.count = (self.count or 0) + 1; return msg.body .. self.suffix .. self.count end
    local events = neffos.controller(Chat)
    assert.is_function(events.chat)
    local a, b = fake_conn("a"), fake_conn("b")
    local na, nb = fake_ns(a), fake_ns(b)
    assert.is_nil(events._OnNamespaceConnect(na, {}))
    assert.equal("hi!1", events.chat(na, { body = "hi" }))
    assert.equal("hi!2", events.chat(na, { body = "hi" }))
    assert.equal("yo!1", events.chat(nb, { body = "yo" }))   -- b has its own instance
    assert.is_nil(Chat.count)                                -- the methods' table is not written
  end)

  it("gives self the connection's fields and what new(ns) returned", function()
    local seen
    local C = { hello = function(self) seen = self; return "hello " .. self.name end }
    local events = neffos.controller(C, { new = function(ns) return { name = "user-" .. ns.id } end })
    local ns = fake_ns(fake_conn("7"))
    assert.equal("hello user-7", events.hello(ns, {}))
    assert.equal(ns, seen.ns)
    assert.equal(ns.conn, seen.conn)
    assert.equal("7", seen.id)
  end)

  it("refuses the namespace connect when new returns nil, err", function()
    local events = neffos.controller({ x = function() end }, { new = function() return nil, "no seats" end })
    local r1, r2 = events._OnNamespaceConnect(fake_ns(fake_conn("a")), {})
    assert.is_nil(r1)
    assert.equal("no seats", r2)
  end)

  it("makes an empty instance when new returns nothing, and keeps it", function()
    local made = 0
    local events = neffos.controller({ n = function(self) self.k = (self.k or 0) + 1; return self.k end },
      { new = function() made = made + 1 end })
    local ns = fake_ns(fake_conn("a"))
    assert.is_nil(events._OnNamespaceConnect(ns, {}))
    assert.equal(1, events.n(ns, {}))
    assert.equal(2, events.n(ns, {}))
    assert.equal(1, made)
  end)

  it("drops the instance when the namespace disconnects, and makes a new one on the next connect", function()
    local made = 0
    local events = neffos.controller({ n = function(self) return self.serial end },
      { new = function() made = made + 1; return { serial = made } end })
    local ns = fake_ns(fake_conn("a"))
    events._OnNamespaceConnect(ns, {})
    assert.equal(1, events.n(ns, {}))
    events._OnNamespaceDisconnect(ns, {})
    events._OnNamespaceConnect(ns, {})
    assert.equal(2, events.n(ns, {}))
  end)

  it("keeps the instance when its OnNamespaceDisconnect refuses", function()
    local C = { OnNamespaceDisconnect = function() return nil, "stay" end, n = function(self) return self.k end }
    local events = neffos.controller(C, { new = function() return { k = "same" } end })
    local ns = fake_ns(fake_conn("a"))
    events._OnNamespaceConnect(ns, {})
    local r1, r2 = events._OnNamespaceDisconnect(ns, {})
    assert.is_nil(r1); assert.equal("stay", r2)
    assert.equal("same", events.n(ns, {}))
  end)

  it("maps Go's system-event method names to the wire names, whatever the matcher", function()
    local C = { OnNamespaceConnected = function() return "c" end, OnRoomJoined = function() end,
                on_say = function() end, helper = function() end }
    local events = neffos.controller(C, { matcher = neffos.trim_prefix_matcher("on_") })
    assert.is_function(events[neffos.OnNamespaceConnected])
    assert.is_function(events[neffos.OnRoomJoined])
    assert.is_function(events.say)
    assert.is_nil(events.on_say)
    assert.is_nil(events.helper)   -- not matched: a plain method, callable as self:helper()
    assert.is_nil(events.OnNamespaceConnected)
  end)

  it("has Go's EventPrefixMatcher and EventTrimPrefixMatcher", function()
    local keep, trim = neffos.prefix_matcher("chat."), neffos.trim_prefix_matcher("On")
    assert.equal("chat.say", keep("chat.say"))
    assert.is_nil(keep("say"))
    assert.equal("Chat", trim("OnChat"))
    assert.is_nil(trim("Chat"))
    assert.is_nil(trim("On"))   -- an empty event name is no event
  end)

  it("lets methods call each other and see the methods' static fields through self", function()
    local C = { greeting = "hey" }
    function C:name() return self.id end
    function C:greet() return self.greeting .. " " .. self:name() end
    local events = neffos.controller(C, { matcher = neffos.prefix_matcher("greet") })
    assert.equal("hey z", events.greet(fake_ns(fake_conn("z")), {}))
  end)

  it("raises clear errors for bad arguments", function()
    assert.has_error(function() neffos.controller("x") end, "neffos.controller: methods must be a table (got string)")
    assert.has_error(function() neffos.controller({}, { mather = print }) end,
      "neffos.controller: unknown option mather (known: matcher, new)")
    assert.has_error(function() neffos.controller({ a = print }, { matcher = function() return 1 end }) end)
  end)

  it("builds an events table that neffos.server accepts", function()
    local desc = neffos.server { namespaces = { chat = neffos.controller({ say = function() end }) } }
    assert.is_true(neffos.is_server(desc))
  end)
end)
