-- The LuaLS annotations (scripts/meta/neffos.lua) cover exactly the API the server gives apps:
-- every method and field the C bindings register (read from their registration tables and
-- __index functions) and every key of require "neffos", and nothing that does not exist. An
-- API change that forgets the annotations, or annotations of a removed function, fail here.

local META = "scripts/meta/neffos.lua"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function sorted_keys(t)
  local r = {}
  for k in pairs(t) do r[#r + 1] = k end
  table.sort(r)
  return r
end

-- What the meta file declares: class -> { name = true } (fields and functions).
local function parse_meta(src)
  local classes, var_class, current = {}, {}, nil
  for line in src:gmatch("[^\n]*") do
    local class = line:match("^%-%-%-@class%s+([%w_.]+)")
    if class then
      current = class
      classes[class] = classes[class] or {}
    end
    local field = line:match("^%-%-%-@field%s+([%w_]+)")
    if field and current then classes[current][field] = true end
    local var = line:match("^local%s+([%w_]+)%s*=%s*{}")
    if var and current then var_class[var] = current end
    local owner, name = line:match("^function%s+([%w_]+)[:.]([%w_]+)%s*%(")
    if owner then
      local c = assert(var_class[owner], "function of an unknown table " .. owner)
      classes[c][name] = true
    end
  end
  return classes
end

-- The body of C function `name` in src (up to the first line that is just "}").
local function c_function(src, name)
  local start = src:find("\n[%w_ ]-[%s%*]" .. name .. "%(")
  if not start then return nil end
  local stop = src:find("\n}\n", start, true)
  return src:sub(start, stop)
end

local function bindings_file(name)
  return read("bindings/" .. name)
end

-- luaL_Reg arrays of a C source: array name -> list of Lua names.
local function reg_arrays(src)
  local arrays = {}
  for name, body in src:gmatch("luaL_Reg%s+([%w_]+)%[%]%s*=%s*(%b{})") do
    local names = {}
    for k in body:gmatch('{%s*"([%w_]+)"') do names[#names + 1] = k end
    arrays[name] = names
  end
  return arrays
end

-- Fields served by an __index function: strcmp(k, "name").
local function index_fields(body)
  local names = {}
  for k in body:gmatch('strcmp%(k,%s*"([%w_]+)"%)') do names[#names + 1] = k end
  return names
end

-- Every luaL_Reg array of bindings/ and what it registers; an array not listed here is new
-- API (or new host internals) and must be placed.
local REGISTRATIONS = {
  ["lua_conn.c"] = { methods = "neffos.Conn" },
  ["lua_nsconn.c"] = { ns_methods = "neffos.NS", room_methods = "neffos.Room" },
  ["lua_server.c"] = { methods = "neffos.Server" },
  ["lua_timer.c"] = { methods = "neffos.Timer" },
  ["lua_shared.c"] = { methods = "neffos.Shared" },
  ["lua_hostlib.c"] = { fns = false },   -- "neffos.host": scripts/neffos.lua's, not the apps'
  ["lua_pattern.c"] = { fns = false },   -- string.find/match/gmatch/gsub, metered: Lua's own API
  ["lua_client.c"] = { fns = false, methods = false },  -- neffos.host.client: scripts/neffos/client.lua wraps it (neffos.dial)
  ["cmd_test.c"] = { methods = false, fns = false },  -- the served app of `neffos test`: neffos.testing's (scripts/neffos/testing.lua)
}

-- __index functions and the class whose fields they serve.
local INDEXES = {
  { "lua_conn.c", "conn_field", "neffos.Conn" },
  { "lua_nsconn.c", "ns_index", "neffos.NS" },
  { "lua_nsconn.c", "room_index", "neffos.Room" },
  { "lua_server.c", "server_index", "neffos.Server" },
}

local function list_dir_c()
  local p = assert(io.popen("ls bindings/*.c"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line:match("[^/]+$") end
  p:close()
  return files
end

describe("scripts/meta/neffos.lua (LuaLS annotations)", function()
  local meta = parse_meta(read(META))
  local want = {}   -- class -> set of names the server registers
  local function add(class, names)
    want[class] = want[class] or {}
    for _, n in ipairs(names) do want[class][n] = true end
  end

  setup(function()
    for _, file in ipairs(list_dir_c()) do
      local arrays = reg_arrays(bindings_file(file))
      for array, names in pairs(arrays) do
        local map = REGISTRATIONS[file]
        local class = map and map[array]
        assert(class ~= nil, ("bindings/%s registers %s { %s }: annotate it in %s and map it in spec/lua/meta_spec.lua")
          :format(file, array, table.concat(names, ", "), META))
        if class then add(class, names) end
      end
    end
    for _, ix in ipairs(INDEXES) do
      local body = assert(c_function(bindings_file(ix[1]), ix[2]), ix[2] .. " not found in " .. ix[1])
      add(ix[3], index_fields(body))
    end
    -- The request table and the message table, built field by field.
    local conn_src = bindings_file("lua_conn.c")
    local req = assert(c_function(conn_src, "lconn_push_request"))
    local names = {}
    for k in req:gmatch('set_field%(L,%s*"([%w_]+)"') do names[#names + 1] = k end
    for k in req:gmatch('lua_setfield%(L,%s*%-2,%s*"([%w_]+)"') do names[#names + 1] = k end
    add("neffos.Request", names)
    -- The msg table's fields: the keys push_msg sets (set_str(L, K_BODY, ...) and the flags'
    -- table), named in
    -- msg_key_names ([K_BODY] = "body").
    local msg_src = bindings_file("lua_message.c")
    local msg = c_function(msg_src, "push_msg")
    assert(msg, "push_msg not found in bindings/lua_message.c")
    local key_names = {}
    for k, name in msg_src:gmatch('%[K_([%u_]+)%]%s*=%s*"([%w_]+)"') do key_names[k] = name end
    names = {}
    for k in msg:gmatch('set_%a+%(L,%s*K_([%u_]+)') do
      names[#names + 1] = assert(key_names[k], "K_" .. k .. " has no name in msg_key_names")
    end
    for k in msg:gmatch('{%s*K_([%u_]+),%s*NF_INV_') do   -- the flags: { K_BINARY, NF_INV_BINARY }
      names[#names + 1] = assert(key_names[k], "K_" .. k .. " has no name in msg_key_names")
    end
    -- The message metatable's methods (scripts/neffos/codec.lua: "name = function(msg)").
    local codec = read("scripts/neffos/codec.lua")
    for k in codec:gmatch('\n%s+([%w_]+)%s*=%s*function%(msg%)') do names[#names + 1] = k end
    add("neffos.Msg", names)
  end)

  it("parses: the registration tables and fields were found", function()
    for _, class in ipairs { "neffos.Conn", "neffos.NS", "neffos.Room", "neffos.Server", "neffos.Timer",
                             "neffos.Request", "neffos.Msg" } do
      assert.is_truthy(want[class] and next(want[class]), class .. ": nothing found in the C sources")
    end
    assert.is_true(want["neffos.NS"].emit and want["neffos.Msg"].body and want["neffos.Conn"].id)
  end)

  it("annotates every method and field of conn, ns, room, server, timer, request and msg, and nothing else",
    function()
      for class, names in pairs(want) do
        assert.are.same(sorted_keys(names), sorted_keys(meta[class] or {}), class)
      end
    end)

  it("annotates every key of require 'neffos' (and of neffos.json, neffos.log), and nothing else", function()
    local neffos = require("neffos").public()
    assert.are.same(sorted_keys(neffos), sorted_keys(meta.neffos))
    assert.are.same(sorted_keys(neffos.log), sorted_keys(meta["neffos.Log"]))
    local json = {}
    for k in pairs(neffos.json) do json[k] = true end
    json.null = true   -- absent without lua-cjson
    assert.are.same(sorted_keys(json), sorted_keys(meta["neffos.Json"]))
  end)

  it("is a ---@meta file that returns the module", function()
    local src = read(META)
    assert.truthy(src:match("^%-%-%-@meta neffos\n"))
    assert.truthy(src:match("\nreturn neffos\n$"))
    assert(load(src, "@" .. META))   -- valid Lua
  end)
end)

describe("scripts/luacheck/neffos_app.lua (the luacheck standard of apps)", function()
  it("allows exactly the globals of the sandbox, and of os only what the sandbox keeps", function()
    local std = dofile("scripts/luacheck/neffos_app.lua")
    local globals, os_fields = {}, {}
    for k, v in pairs(std.read_globals) do
      if type(k) == "number" then globals[v] = true else globals[k] = true end
    end
    for _, f in ipairs(std.read_globals.os.fields) do os_fields[f] = true end
    local env = require("neffos").new_env({})
    assert.are.same(sorted_keys(env), sorted_keys(globals))
    assert.are.same(sorted_keys(env.os), sorted_keys(os_fields))
  end)
end)
