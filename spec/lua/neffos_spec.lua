-- Specs of scripts/neffos.lua under a plain lua5.4 (no host):
--   lua5.4 /usr/bin/busted --lpath=scripts/?.lua spec/lua/neffos_spec.lua
local neffos = require "neffos"

local HERE = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
local FIX = HERE .. "/fixtures"

local function noop() end

-- The error text of fn(...), or nil if it did not raise.
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return nil end
  return tostring(err)
end

local function load_fixture(name, opts)
  local dir = FIX .. "/" .. name
  return neffos.load_app(dir .. "/app.lua", dir, opts)
end

describe("constants", function()
  it("are the wire names of the system events", function()
    assert.equal("_OnNamespaceConnect", neffos.OnNamespaceConnect)
    assert.equal("_OnNamespaceConnected", neffos.OnNamespaceConnected)
    assert.equal("_OnNamespaceDisconnect", neffos.OnNamespaceDisconnect)
    assert.equal("_OnRoomJoin", neffos.OnRoomJoin)
    assert.equal("_OnRoomJoined", neffos.OnRoomJoined)
    assert.equal("_OnRoomLeave", neffos.OnRoomLeave)
    assert.equal("_OnRoomLeft", neffos.OnRoomLeft)
    assert.equal("_OnAnyEvent", neffos.OnAnyEvent)
    assert.equal("_OnNativeMessage", neffos.OnNativeMessage)
    assert.equal("bad namespace", neffos.ErrBadNamespace)
  end)
end)

describe("neffos.server", function()
  it("returns a valid description as it is", function()
    local d = { endpoint = "/x", namespaces = { v1 = { echo = noop } } }
    assert.equal(d, neffos.server(d))
    assert.is_true(neffos.is_server(d))
  end)

  it("accepts every documented field", function()
    assert.has_no.errors(function()
      neffos.server {
        endpoint = "/echo", id = noop, on_connect = noop, on_disconnect = noop, on_reload = noop,
        timeouts = { read = 30, write = 0.5 }, native_only = false,
        namespaces = { [""] = { [neffos.OnNativeMessage] = noop }, v1 = {} },
      }
    end)
  end)

  it("points at the caller's file and line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local err = raised(function() local d = neffos.server { namespaces = { v1 = { echo = "nope" } } }; return d end)
    assert.is_truthy(err:find("neffos_spec.lua:" .. line .. ": ", 1, true), err)
    assert.is_truthy(err:find("namespaces.v1.echo must be a function (got string)", 1, true), err)
  end)

  local cases = {
    { "not a table", "x", "must be a table" },
    { "unknown field (a typo)", { namespace = {} }, "unknown field namespace" },
    { "no namespaces", { endpoint = "/e" }, "field namespaces is required" },
    { "endpoint without /", { endpoint = "echo", namespaces = {} }, "endpoint must be a path" },
    { "endpoint with a query", { endpoint = "/e?x=1", namespaces = {} }, "endpoint must be a path" },
    { "endpoint not a string", { endpoint = 1, namespaces = {} }, "field endpoint must be a string" },
    { "namespace not a table", { namespaces = { v1 = noop } }, "namespaces.v1 must be a table of handlers" },
    { "namespace name not a string", { namespaces = { [1] = {} } }, "a namespace name must be a string" },
    { "handler not a function", { namespaces = { v1 = { e = 1 } } }, "namespaces.v1.e must be a function" },
    { "empty event name", { namespaces = { v1 = { [""] = noop } } }, "an event name must be a non-empty string" },
    { "hook not a function", { on_connect = "x", namespaces = {} }, "field on_connect must be a function" },
    { "negative timeout", { timeouts = { read = -1 }, namespaces = {} }, "timeouts.read must be a number" },
    { "unknown timeout", { timeouts = { idle = 1 }, namespaces = {} }, "timeouts: unknown field idle" },
  }
  for _, c in ipairs(cases) do
    it("refuses: " .. c[1], function()
      local err = raised(neffos.server, c[2])
      assert.is_truthy(err, "no error")
      assert.is_truthy(err:find(c[3], 1, true), err)
      assert.is_truthy(err:find("neffos.server: ", 1, true), err)
    end)
  end
end)

describe("neffos.normalize_app", function()
  local a = { namespaces = { v1 = {} } }
  local b = { endpoint = "/b", namespaces = {} }

  it("wraps a single description", function()
    local list = assert(neffos.normalize_app(a, "/d"))
    assert.same({ a }, list)
  end)

  it("takes a list", function()
    local list = assert(neffos.normalize_app({ a, b }, "/d"))
    assert.equal(2, #list)
  end)

  it("refuses two servers on one endpoint (the default counts)", function()
    local _, err = neffos.normalize_app({ a, { namespaces = {} } }, "/d")
    assert.is_truthy(err:find("endpoint /d is declared twice", 1, true), err)
  end)

  it("refuses what is not a server", function()
    assert.is_nil((neffos.normalize_app(nil)))
    assert.is_nil((neffos.normalize_app({})))
    assert.is_nil((neffos.normalize_app({ a, x = 1 })))
    local _, err = neffos.normalize_app({ a, { namespaces = 1 } })
    assert.is_truthy(err:find("server #2", 1, true), err)
  end)
end)

describe("endpoint configuration", function()
  it("is native-only when the only handler is \"\"/_OnNativeMessage (docs/protocol.md §4.7)", function()
    assert.is_true(neffos.is_native_only { namespaces = { [""] = { [neffos.OnNativeMessage] = noop } } })
    assert.is_false(neffos.is_native_only { namespaces = { [""] = { [neffos.OnNativeMessage] = noop, x = noop } } })
    assert.is_false(neffos.is_native_only { namespaces = { v1 = { [neffos.OnNativeMessage] = noop } } })
    assert.is_false(neffos.is_native_only { native_only = false,
                                             namespaces = { [""] = { [neffos.OnNativeMessage] = noop } } })
    assert.is_true(neffos.is_native_only { native_only = true, namespaces = { v1 = {} } })
  end)

  it("turns timeouts in seconds into milliseconds", function()
    local c = neffos.endpoint_config { timeouts = { read = 1.5, write = 0.0004 }, namespaces = {} }
    assert.same({ native_only = false, read_ms = 1500, write_ms = 1 }, c)
    c = neffos.endpoint_config { namespaces = {} }
    assert.equal(0, c.read_ms)
  end)
end)

describe("the sandbox", function()
  local function env()
    return neffos.new_env { path = { FIX .. "/good/?.lua" } }
  end

  it("has the safe libraries", function()
    local e = env()
    for _, name in ipairs { "string", "table", "math", "utf8", "coroutine", "pairs", "pcall", "tostring" } do
      assert.is_not_nil(e[name], name)
    end
    assert.is_function(e.os.time)
    assert.is_function(e.os.date)
    assert.is_function(e.os.clock)
    assert.equal(e, e._G)
  end)

  it("has no process, file or debug access", function()
    local e = env()
    assert.is_nil(e.io)
    assert.is_nil(e.debug)
    assert.is_nil(e.os.execute)
    assert.is_nil(e.os.exit)
    assert.is_nil(e.os.remove)
    assert.is_nil(e.dofile)
    assert.is_nil(e.loadfile)
    assert.is_nil(e.package)
  end)

  it("loads text chunks only, in the app's environment", function()
    local e = env()
    e.marker = 7
    local f = assert(e.load("return marker"))
    assert.equal(7, f())
    assert.is_nil(e.load(string.dump(function() end)))
  end)

  it("restricts collectgarbage", function()
    local e = env()
    assert.is_number(e.collectgarbage("count"))
    assert.is_truthy(raised(e.collectgarbage, "stop"):find("not available", 1, true))
  end)

  it("requires the app's Lua files, neffos and cjson, but no C module", function()
    local e = env()
    assert.equal(neffos.public(), e.require("neffos"))
    assert.equal("HI", e.require("util").shout("hi"))
    assert.equal(e.require("util"), e.require("util"))
    assert.is_truthy(raised(e.require, "lfs"):find("module 'lfs' not found", 1, true))
    assert.is_truthy(raised(e.require, "os"))
    if pcall(require, "cjson") then
      assert.is_table(e.require("cjson"))
    end
  end)

  it("gives apps the documented neffos API, not the host's loader", function()
    local api = env().require("neffos")
    for _, k in ipairs { "new_env", "load_app", "normalize_app", "endpoint_config", "_coroutine", "_yield_tag",
                         "public" } do
      assert.is_nil(api[k], k)
    end
    for _, k in ipairs { "server", "after", "every", "sleep", "log", "json", "state", "servers", "scale_out",
                         "OnAnyEvent", "ErrWrite" } do
      assert.is_not_nil(api[k], k)
    end
    assert.equal(neffos.state, api.state)
  end)

  it("refuses module names that are not dotted words", function()
    local e = env()
    for _, name in ipairs { "../util", "/util", "a..b", ".util", "util.", "ut il", "util\0", "" } do
      assert.is_truthy(raised(e.require, name):find("bad module name", 1, true), name)
    end
  end)

  it("computes module paths with the loader's own string functions", function()
    local e = env()
    local gsub = string.gsub
    string.gsub = function() return FIX .. "/good/app.lua" end -- luacheck: ignore 122
    local err = raised(e.require, "nothing_here")
    string.gsub = gsub -- luacheck: ignore 122
    assert.is_truthy(err and err:find("module 'nothing_here' not found", 1, true), err)
  end)

  it("refuses __gc metamethods", function()
    local e = env()
    assert.is_truthy(raised(e.setmetatable, {}, { __gc = function() end }):find("__gc", 1, true))
    assert.is_truthy(raised(e.setmetatable, {}, { __gc = true }):find("__gc", 1, true))
    local t = e.setmetatable({}, { __index = { x = 1 } })
    assert.equal(1, t.x)
  end)

  it("closes an app coroutine's <close> variables when it fails", function()
    local co = neffos._coroutine
    local closed = 0
    local c = co.create(function()
      local _ <close> = setmetatable({}, { __close = function() closed = closed + 1 end })
      error("x", 0)
    end)
    local ok, err = co.resume(c)
    assert.is_false(ok)
    assert.equal("x", err)
    assert.equal(1, closed)
    assert.equal("dead", co.status(c))
    co.close(c)
    assert.equal(1, closed)
  end)

  it("lets host waits pass through the app's own coroutines", function()
    local tag = neffos._yield_tag
    local co = neffos._coroutine
    -- A "handler" that waits inside coroutine.wrap, as ns:ask would.
    local handler = coroutine.create(function()
      local inner = co.wrap(function(x)
        local answer = coroutine.yield(tag, "ask")      -- what a host wait does
        local y = co.yield(x + answer)                   -- an ordinary yield to the app
        return y * 2
      end)
      local first = inner(1)
      local second = inner(10)
      return first, second
    end)
    local ok, t, what = coroutine.resume(handler)
    assert.is_true(ok)
    assert.equal(tag, t)
    assert.equal("ask", what)
    local ok2, a, b = coroutine.resume(handler, 41)      -- the host resumes with the answer
    assert.is_true(ok2)
    assert.equal(42, a)
    assert.equal(20, b)
  end)

  it("propagates errors from wrapped coroutines", function()
    local f = neffos._coroutine.wrap(function() error("inner", 0) end)
    assert.equal("inner", raised(f))
    local ok, err = neffos._coroutine.resume(coroutine.create(function() error("x", 0) end))
    assert.is_false(ok)
    assert.equal("x", err)
  end)
end)

describe("neffos.load_app", function()
  it("loads an app with a module beside it", function()
    local v = load_fixture("good", { default_endpoint = "/d" })
    assert.equal(1, #v.servers)
    assert.equal("/echo", v.servers[1].endpoint)
    assert.equal(2, #v.files)
    assert.is_truthy(v.files[2]:find("util.lua$"))
    assert.equal("HI", v.servers[1].namespaces.v1.echo(nil, { body = "hi" }))
  end)

  it("loads modules from a directory's init.lua", function()
    local v = load_fixture("withmod")
    assert.equal("x", v.servers[1].namespaces.v1.echo(nil, { body = "x" }))
    assert.equal("/echo", v.servers[1].endpoint)
  end)

  it("gives every load fresh globals and fresh modules", function()
    local v1 = load_fixture("good")
    local v2 = load_fixture("good")
    assert.are_not.equal(v1.env, v2.env)
    assert.are_not.equal(v1.loaded.util, v2.loaded.util)
    v1.env.leak = true
    assert.is_nil(v2.env.leak)
  end)

  it("keeps neffos.state across loads", function()
    neffos.state.counter = 5
    load_fixture("good")
    assert.equal(5, neffos.state.counter)
  end)

  it("loads a list of servers with their configurations", function()
    local v = load_fixture("list")
    assert.equal(2, #v.servers)
    assert.is_false(v.configs[1].native_only)
    assert.is_true(v.configs[2].native_only)
  end)

  it("reports a syntax error with file:line", function()
    local err = raised(load_fixture, "syntax")
    assert.is_truthy(err:find("syntax/app.lua:3:", 1, true), err)
  end)

  it("reports a runtime error at load with file:line", function()
    local err = raised(load_fixture, "runtime")
    assert.is_truthy(err:find("runtime/app.lua:3:", 1, true), err)
  end)

  it("reports a bad description with file:line, also from a tail call", function()
    local err = raised(load_fixture, "badfield")
    assert.is_truthy(err:find("badfield/app.lua:5: neffos.server: unknown field namespace", 1, true), err)
  end)

  it("reports a missing file", function()
    local err = raised(neffos.load_app, FIX .. "/nope/app.lua", FIX .. "/nope")
    assert.is_truthy(err:find("cannot open " .. FIX .. "/nope/app.lua", 1, true), err)
  end)

  -- The reload watcher's view (issue 12 point 10): what a load read, by content.
  it("records what it read, and same_files tells whether a save changed any of it", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir " .. dir))
    local function put(name, text)
      local f = assert(io.open(dir .. "/" .. name, "wb"))
      f:write(text)
      f:close()
    end
    put("util.lua", "return { x = 1 }\n")
    put("app.lua", '#!/usr/bin/env neffos\nlocal u = require "util"\n'
      .. 'local ok = pcall(require, "later")\nreturn require("neffos").server { namespaces = { v1 = {} } }\n')
    local v = neffos.load_app(dir .. "/app.lua", dir)
    assert.is_string(v.digests[dir .. "/util.lua"])
    assert.is_false(v.digests[dir .. "/later.lua"], "looked for in vain")
    assert.equal(v.digests, neffos.last_digests)
    assert.is_true(neffos.same_files(v.digests))
    put("util.lua", "return { x = 1 }\n")   -- saved unchanged
    assert.is_true(neffos.same_files(v.digests))
    put("util.lua", "return { x = 2 }\n")
    assert.is_false(neffos.same_files(v.digests))
    put("util.lua", "return { x = 1 }\n")
    put("later.lua", "return 1\n")          -- the optional module appears
    assert.is_false(neffos.same_files(v.digests))
    os.remove(dir .. "/later.lua")
    -- An empty file is a save in progress: never loaded, even as a module.
    put("util.lua", "")
    local err = raised(neffos.load_app, dir .. "/app.lua", dir)
    assert.is_truthy(err:find("util.lua: empty file", 1, true), err)
    assert.is_false(neffos.same_files(v.digests))
    assert.is_true(neffos.same_files(neffos.last_digests), "the failed attempt is recorded too")
    os.execute("rm -r " .. dir)
  end)
end)

describe("outside the server", function()
  it("logs to stderr and formats only with arguments", function()
    assert.has_no.errors(function()
      neffos.log.info("100%% sure %s", "yes")
      neffos.log.debug("100% literal")
    end)
  end)

  it("refuses timers and sleep without the host", function()
    assert.is_truthy(raised(neffos.after, 1, noop):find("only available inside the neffos server", 1, true))
    assert.is_truthy(raised(neffos.sleep, 1):find("only available inside the neffos server", 1, true))
    assert.is_truthy(raised(neffos.after, -1, noop):find("non-negative", 1, true))
    assert.is_truthy(raised(neffos.every, 0, noop):find("greater than 0", 1, true))
    assert.same({}, neffos.servers())
  end)

  it("has JSON", function()
    if not pcall(require, "cjson") then return end
    assert.equal('{"a":1}', neffos.json.encode { a = 1 })
    assert.equal(2, neffos.json.decode("[1,2]")[2])
  end)
end)
