-- neffos.lua - the Lua side of the neffos server: constants, validation of
-- server descriptions, the sandboxed environment an app runs in, and the app
-- loader used at start, on hot reload and by `neffos --check`.
--
-- Everything here is plain Lua so that busted can test it. The C host injects
-- its functions as package.loaded["neffos.host"] before requiring this file;
-- under a plain lua5.4 (the specs) that module is absent and stubs are used.

local M = {}

-- The loader's own string and file functions, taken before any app code runs:
-- the string table is shared with apps, and a path must not be computed with
-- a function an app replaced (docs/lua-api.md, "Sandbox").
local s_find, s_gsub = string.find, string.gsub
local io_open = io.open

local ok_host, host = pcall(require, "neffos.host")
if not ok_host or type(host) ~= "table" then
  host = nil
end

-- ---------------------------------------------------------------------------
-- Constants: system events under their wire names (docs/protocol.md §7.1).

M.OnNamespaceConnect    = "_OnNamespaceConnect"
M.OnNamespaceConnected  = "_OnNamespaceConnected"
M.OnNamespaceDisconnect = "_OnNamespaceDisconnect"
M.OnRoomJoin            = "_OnRoomJoin"
M.OnRoomJoined          = "_OnRoomJoined"
M.OnRoomLeave           = "_OnRoomLeave"
M.OnRoomLeft            = "_OnRoomLeft"
M.OnAnyEvent            = "_OnAnyEvent"
M.OnNativeMessage       = "_OnNativeMessage"

-- The wire error texts that carry a meaning (docs/protocol.md §9).
M.ErrBadNamespace = "bad namespace"
M.ErrBadRoom      = "bad room"
M.ErrWrite        = "write closed"

M._VERSION = host and host.version or "dev"

-- A table the host keeps across hot reloads: this module is loaded once per
-- process, only the app's own files are loaded again.
M.state = {}

-- Workers (--workers N, docs/lua-api.md "Workers"): each worker runs this
-- app in a Lua state of its own; `neffos.state` and module locals are the
-- worker's. neffos.shared is the one dictionary they all share.
M.worker = { id = host and host.worker_id or 1, count = host and host.worker_count or 1 }
M.shared = host and host.shared or false   -- false: --shared-dict-bytes 0, or no server

-- ---------------------------------------------------------------------------
-- Logging. The host's logger when running in the server, stderr otherwise.

local LEVELS = { debug = 0, info = 1, warn = 2, error = 3 }

local function format_log(fmt, ...)
  if select("#", ...) == 0 then
    return tostring(fmt)
  end
  return string.format(tostring(fmt), ...)
end

M.log = {}
for name, level in pairs(LEVELS) do
  M.log[name] = function(fmt, ...)
    local text = format_log(fmt, ...)
    if host then
      host.log(level, text)
    else
      io.stderr:write(name, " ", text, "\n")
    end
  end
end

-- ---------------------------------------------------------------------------
-- JSON through lua-cjson when it is installed.

-- Like every function of the API that can fail, encode and decode return
-- nil, err (cjson's message) instead of raising: bad JSON from a client is
-- input, not a bug. An error that must reach the host (the instruction budget
-- ran out) is raised again.
local json_over_budget -- set below, once the host's over_budget is known

local function json_result(ok, ...)
  if ok then return ... end
  local err = ...
  if json_over_budget() then error(err, 0) end
  return nil, tostring(err)
end

do
  local ok, cjson = pcall(require, "cjson")
  if ok then
    local encode, decode = cjson.encode, cjson.decode
    M.json = {
      encode = function(value) return json_result(pcall(encode, value)) end,
      decode = function(text)
        if type(text) ~= "string" then
          return nil, ("neffos.json.decode: want a string (got %s)"):format(type(text))
        end
        return json_result(pcall(decode, text))
      end,
      null = cjson.null,
    }
  else
    local function missing() error("neffos.json: lua-cjson is not installed", 2) end
    M.json = { encode = missing, decode = missing }
  end
end

-- Controllers (Go's NewStruct) and the body codec (Go's Marshal/Unmarshal).
for k, v in pairs(require "neffos.controller") do M[k] = v end
local codec = require "neffos.codec"
M.marshal, M.unmarshal = codec.marshal, codec.unmarshal

-- ---------------------------------------------------------------------------
-- Host services: timers and waiting. Only meaningful inside the server.

local function need_host(what)
  if not host then
    error(what .. " is only available inside the neffos server", 3)
  end
end

local function check_seconds(what, s)
  if type(s) ~= "number" or s ~= s or s < 0 then
    error(("%s: seconds must be a non-negative number (got %s)"):format(what, tostring(s)), 3)
  end
end

-- A timer that never fires: what a worker gets for a timer that runs on
-- another one ({ worker = n }).
local idle_timer = setmetatable({}, { __index = { cancel = function() end }, __metatable = "locked" })

-- options.worker = n: only worker n arms it (once per process with
-- --workers N: { worker = 1 }); the others get a timer that never fires.
local function timer_worker(what, options)
  if options == nil then return nil end
  if type(options) ~= "table" then error(what .. ": options must be a table", 3) end
  local w = options.worker
  if w ~= nil and (math.type(w) ~= "integer" or w < 1) then
    error(what .. ": options.worker must be a worker number (1 .. neffos.worker.count)", 3)
  end
  -- A timer for a worker this process does not have would never run anywhere.
  if w ~= nil and w > M.worker.count then
    error(("%s: options.worker %d, but this process has %d worker(s) (--workers)"):format(what, w, M.worker.count), 3)
  end
  return w
end

function M.after(seconds, fn, options)
  check_seconds("neffos.after", seconds)
  if type(fn) ~= "function" then error("neffos.after: fn must be a function", 2) end
  need_host("neffos.after")
  local w = timer_worker("neffos.after", options)
  if w and w ~= M.worker.id then return idle_timer end
  return host.timer(seconds, fn, false)
end

function M.every(seconds, fn, options)
  check_seconds("neffos.every", seconds)
  if seconds == 0 then error("neffos.every: the interval must be greater than 0", 2) end
  if type(fn) ~= "function" then error("neffos.every: fn must be a function", 2) end
  need_host("neffos.every")
  local w = timer_worker("neffos.every", options)
  if w and w ~= M.worker.id then return idle_timer end
  return host.timer(seconds, fn, true)
end

function M.sleep(seconds)
  check_seconds("neffos.sleep", seconds)
  need_host("neffos.sleep")
  return host.sleep(seconds)
end

-- The client (docs/lua-api.md, "Client"): scripts/neffos/client.lua on the C client.
function M.dial(url, namespaces, options)
  if not host and not package.loaded["neffos.client.raw"] then
    error("neffos.dial is only available inside the neffos server or neffos test", 2)
  end
  local client = require "neffos.client"
  return client.dial(url, namespaces, options)
end

function M.servers()
  if not host then return {} end
  return host.servers()
end

-- ---------------------------------------------------------------------------
-- Server descriptions.

local SERVER_FIELDS = {
  endpoint = "string", namespaces = "table", id = "function",
  on_connect = "function", on_disconnect = "function", on_reload = "function",
  timeouts = "table", native_only = "boolean", codec = "table", on_upgrade_error = "function",
}

local function field_list()
  local names = {}
  for k in pairs(SERVER_FIELDS) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function quote_key(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  return ("[%q]"):format(tostring(k))
end

-- Returns nil when desc is a valid server description, else a message.
local function check_server(desc)
  if type(desc) ~= "table" then
    return ("a server description must be a table (got %s)"):format(type(desc))
  end
  for k, v in pairs(desc) do
    local want = SERVER_FIELDS[k]
    if not want then
      return ("unknown field %s (known: %s)"):format(tostring(k), field_list()), k
    end
    if type(v) ~= want then
      return ("field %s must be a %s (got %s)"):format(k, want, type(v)), k
    end
  end
  local ep = desc.endpoint
  if ep ~= nil and (ep:sub(1, 1) ~= "/" or ep:find("[%s?#]")) then
    return ("endpoint must be a path starting with '/' without spaces, '?' or '#' (got %q)"):format(ep), "endpoint"
  end
  if desc.namespaces == nil then
    return "field namespaces is required: { [name] = { [event] = handler } }"
  end
  for name, events in pairs(desc.namespaces) do
    local where = "namespaces" .. quote_key(name)
    if type(name) ~= "string" then
      return ("%s: a namespace name must be a string (got %s)"):format(where, type(name)), "namespaces"
    end
    if type(events) ~= "table" then
      return ("%s must be a table of handlers (got %s)"):format(where, type(events)), name
    end
    for event, fn in pairs(events) do
      local ewhere = where .. quote_key(event)
      if type(event) ~= "string" or event == "" then
        return ("%s: an event name must be a non-empty string"):format(ewhere), name
      end
      if type(fn) ~= "function" then
        return ("%s must be a function (got %s)"):format(ewhere, type(fn)), event
      end
    end
  end
  if desc.codec ~= nil then
    local cerr = codec.check(desc.codec)
    if cerr then return cerr, "codec" end
  end
  local t = desc.timeouts
  if t then
    for k, v in pairs(t) do
      if k ~= "read" and k ~= "write" then
        return ("timeouts: unknown field %s (known: read, write)"):format(tostring(k)), k
      end
      if type(v) ~= "number" or v ~= v or v < 0 or v > 86400 * 365 then
        return ("timeouts.%s must be a number of seconds >= 0 (got %s)"):format(k, tostring(v)), k
      end
    end
  end
  return nil
end

-- Marks tables built by neffos.server, so that a list of them is told apart
-- from a single description.
local made = setmetatable({}, { __mode = "k" })

-- Files whose top level runs now (the app's main file, then required
-- modules): where to point when the caller's frame is gone.
local loading = {}

local function pattern_escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- The first line of `file` that assigns `key` (a heuristic for tail calls).
local function find_line(file, key)
  local f = type(key) == "string" and io_open(file, "r")
  if not f then return nil end
  local k = pattern_escape(key)
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:find("%f[%w_]" .. k .. "%f[^%w_]%s*=") or line:find("%[%s*[\"']" .. k .. "[\"']%s*%]%s*=") then
      f:close()
      return n
    end
  end
  f:close()
  return nil
end

-- "file:line: " of the code that called neffos.server. `return
-- neffos.server {...}` is a tail call, which leaves no caller frame: then
-- the file being loaded, and the line that sets the offending key.
local function caller_position(key)
  local me = debug.getinfo(2, "t")
  local info = debug.getinfo(3, "Sl")
  if me and not me.istailcall and info and info.currentline and info.currentline > 0 then
    local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
    return src .. ":" .. info.currentline .. ": "
  end
  local file = loading[#loading]
  if not file then return "" end
  local line = find_line(file, key)
  return file .. (line and (":" .. line) or "") .. ": "
end

--- Scale-out from the app instead of the command line:
--   neffos.scale_out { redis = "redis://127.0.0.1:6379", prefix = "chat" }
--   neffos.scale_out { nats = "nats://127.0.0.1:4222" }
-- Read once, when the server starts (a reload does not change brokers);
-- the --redis / --nats flags win over it.
function M.scale_out(opts)
  if type(opts) ~= "table" then
    error("neffos.scale_out: want a table { redis = URL } or { nats = URL }", 2)
  end
  for k, v in pairs(opts) do
    if k ~= "redis" and k ~= "nats" and k ~= "prefix" then
      error(("neffos.scale_out: unknown field %s (known: redis, nats, prefix)"):format(tostring(k)), 2)
    end
    if type(v) ~= "string" then
      error(("neffos.scale_out: %s must be a string (got %s)"):format(k, type(v)), 2)
    end
  end
  if (opts.redis == nil) == (opts.nats == nil) then
    error("neffos.scale_out: give exactly one of redis, nats", 2)
  end
  M._scale_out = { kind = opts.redis and "redis" or "nats", url = opts.redis or opts.nats, prefix = opts.prefix }
end

function M.server(desc)
  local err, key = check_server(desc)
  if err then
    error(caller_position(key) .. "neffos.server: " .. err, 0)
  end
  made[desc] = true
  return desc
end

function M.is_server(t)
  return made[t] == true
end

-- Does the description only speak raw frames (docs/protocol.md §4.7)? The only namespace
-- is "" and its only event is _OnNativeMessage; `native_only` overrides.
function M.is_native_only(desc)
  if desc.native_only ~= nil then return desc.native_only end
  local only_ns, count = nil, 0
  for name in pairs(desc.namespaces) do
    only_ns, count = name, count + 1
  end
  if count ~= 1 or only_ns ~= "" then return false end
  local ev_count, only_ev = 0, nil
  for ev in pairs(desc.namespaces[""]) do
    only_ev, ev_count = ev, ev_count + 1
  end
  return ev_count == 1 and only_ev == M.OnNativeMessage
end

-- What the host's nf_endpoint_config gets for a description.
function M.endpoint_config(desc)
  local t = desc.timeouts or {}
  local function ms(s) return s and math.ceil(s * 1000) or 0 end
  return { native_only = M.is_native_only(desc), read_ms = ms(t.read), write_ms = ms(t.write) }
end

-- Normalises what an app returned (one description or a list of them) into
-- a list with an endpoint each. Returns list or nil, message.
function M.normalize_app(ret, default_endpoint)
  default_endpoint = default_endpoint or "/echo"
  if type(ret) ~= "table" then
    return nil, ("the app must return neffos.server { ... } or a list of them (got %s)"):format(type(ret))
  end
  local list
  if made[ret] or ret.namespaces ~= nil then
    list = { ret }
  else
    list = {}
    for k in pairs(ret) do
      if math.type(k) ~= "integer" or k < 1 or k > #ret then
        return nil, ("the app returned a table that is neither a server description nor a list of them (key %s)")
          :format(tostring(k))
      end
    end
    for i = 1, #ret do list[i] = ret[i] end
    if #list == 0 then
      return nil, "the app returned an empty list of servers"
    end
  end
  local seen = {}
  for i, desc in ipairs(list) do
    local err = check_server(desc)
    if err then
      return nil, ("server #%d: %s"):format(i, err)
    end
    local ep = desc.endpoint or default_endpoint
    if seen[ep] then
      return nil, ("server #%d: endpoint %s is declared twice"):format(i, ep)
    end
    seen[ep] = true
  end
  return list
end

-- ---------------------------------------------------------------------------
-- The sandbox: what app code sees as its globals.

-- Host waits yield the running coroutine with this tag first. The wrapped
-- coroutine library passes such yields through to the host, so an app may use
-- coroutines freely and still call ns:ask or neffos.sleep inside them.
local YIELD_TAG = host and host.yield_tag or {}
M._yield_tag = YIELD_TAG

local co_create, co_resume, co_yield, co_status = coroutine.create, coroutine.resume, coroutine.yield,
  coroutine.status
local pack = table.pack

-- After a handler ran past its instruction budget, the error must reach the
-- host even through the app's pcall: these rethrow it.
local over_budget = host and host.over_budget or function() return false end
json_over_budget = over_budget

-- The results pass through as varargs, not a table: a pcall that caught
-- "not enough memory" with the heap still full must return it to the app,
-- and a table allocated after it would raise past the app's pcall instead.
local function rethrow_if_over(ok, ...)
  if not ok and over_budget() then
    error((...), 0)
  end
  return ok, ...
end

local function sandbox_pcall(...)
  return rethrow_if_over(pcall(...))
end

local function sandbox_xpcall(...)
  return rethrow_if_over(xpcall(...))
end

-- What co_resume returned: a host wait inside the app's coroutine (it
-- yielded YIELD_TAG) suspends the handler too, and what the host resumes us
-- with goes to the inner coroutine (a tail call: no stack per wait).
local function resumed(co, ok, ...)
  if ok and (...) == YIELD_TAG and co_status(co) == "suspended" then
    return resumed(co, co_resume(co, co_yield(...)))
  end
  return rethrow_if_over(ok, ...)
end

local function resume(co, ...)
  return resumed(co, co_resume(co, ...))
end

-- An error inside an app coroutine is caught in that coroutine, so its
-- to-be-closed variables are closed right away, under the handler's budget
-- and memory cap, and the coroutine then dies of an ordinary error. Raised
-- by the count hook and not caught there, it would leave a dead coroutine
-- whose pending __close handlers coroutine.close() could later run with
-- hooks off (Lua 5.4.4 keeps hooks disabled on such a thread): unmetered.
local function body_result(ok, ...)
  if ok then return ... end
  error((...), 0)
end

local function create(fn)
  if type(fn) ~= "function" then
    error(("bad argument #1 to 'create' (function expected, got %s)"):format(type(fn)), 2)
  end
  return co_create(function(...) return body_result(pcall(fn, ...)) end)
end

local function wrap(fn)
  local co = create(fn)
  return function(...)
    return body_result(resume(co, ...))
  end
end

local sandbox_coroutine = {
  create = create, resume = resume, wrap = wrap, yield = coroutine.yield,
  status = coroutine.status, running = coroutine.running, isyieldable = coroutine.isyieldable,
  close = coroutine.close,
}
M._coroutine = sandbox_coroutine

local BASE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
  "rawset", "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type", "xpcall",
  "_VERSION" }

local GC_OPTIONS = { collect = true, count = true, step = true, isrunning = true }

-- Finalizers are refused: Lua runs a __gc metamethod whenever the collector
-- gets to it (in any handler, or in the host between two), with hooks off,
-- so neither the instruction budget nor a signal could stop one that loops.
-- An object is only marked for finalization by setmetatable when its
-- metatable has a __gc field then (a raw field, as Lua looks it up), so
-- refusing it here closes the way; host objects' metatables are locked.
local raw_setmetatable, rawget_ = setmetatable, rawget

local function sandbox_setmetatable(t, mt)
  if type(mt) == "table" and rawget_(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not available to apps (a finalizer would run outside " ..
      "the instruction budget and the memory cap); release resources explicitly or with a <close> variable", 2)
  end
  return raw_setmetatable(t, mt)
end

-- What apps get from require "neffos": the documented API only. The host's
-- own functions (load_app, new_env, ...) open files by path and stay here.
local PUBLIC = { "OnNamespaceConnect", "OnNamespaceConnected", "OnNamespaceDisconnect", "OnRoomJoin",
  "OnRoomJoined", "OnRoomLeave", "OnRoomLeft", "OnAnyEvent", "OnNativeMessage", "ErrBadNamespace", "ErrBadRoom",
  "ErrWrite", "_VERSION", "state", "log", "json", "after", "every", "sleep", "servers", "server", "is_server",
  "scale_out", "controller", "prefix_matcher", "trim_prefix_matcher", "marshal", "unmarshal", "dial", "worker", "shared" }
local api

function M.public()
  if not api then
    api = {}
    for _, k in ipairs(PUBLIC) do api[k] = M[k] end
  end
  return api
end

-- Modules every app version shares (never reloaded).
local function shared_module(name)
  if name == "neffos" then return M.public() end
  if name == "string" then return string end
  if name == "table" then return table end
  if name == "math" then return math end
  if name == "utf8" then return utf8 end
  if name == "coroutine" then return sandbox_coroutine end
  if name == "cjson" or name == "cjson.safe" then
    local ok, mod = pcall(require, name)
    if ok then return mod end
  end
  return nil
end

-- The bytes of a source file, or nil and "path: reason" (as io.open says it).
local function read_source(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local src, rerr = f:read("a")
  f:close()
  if not src then return nil, path .. ": " .. tostring(rerr) end
  return src
end

-- A file's content as the reload watcher compares it: SHA-1 from the host,
-- the bytes themselves under a plain Lua (the specs).
local digest = host and host.digest or function(s) return s end

-- Compiles a source file in env like loadfile does (a leading BOM and "#"
-- line skipped), from the very bytes it records the digest of in
-- ctx.digests: a later save is compared with what was loaded, not with what
-- the disk held a moment after.
local function load_source(ctx, path, env)
  local src, err = read_source(path)
  if not src then
    ctx.digests[path] = false
    return nil, "cannot open " .. err
  end
  ctx.digests[path] = digest(src)
  if src == "" then
    -- What an editor that truncates, then writes, leaves in between: never
    -- served (an empty module would load as `true`). A comment makes a
    -- deliberately empty file.
    return nil, path .. ": empty file (a save in progress?)"
  end
  src = src:gsub("^\239\187\191", "", 1):gsub("^#[^\n]*", "", 1)
  return load(src, "@" .. path, "t", env)
end

-- True when every file in `digests` (path -> digest, false for a file that
-- was looked for and absent) is still as it was: the save changed nothing a
-- load would read (an editor's intermediate step, a touch, a second event).
function M.same_files(digests)
  for path, want in pairs(digests) do
    local src = read_source(path)
    if (src and digest(src) or false) ~= want then return false end
  end
  return true
end

local function file_exists(path)
  local f = io_open(path, "r")
  if not f then return false end
  -- io.open succeeds on a directory; reading tells them apart (EISDIR).
  local _, err = f:read(0)
  f:close()
  return err == nil
end

-- Builds the globals of one app version. `ctx` collects the files loaded
-- (for the watcher) and the version's own module cache.
function M.new_env(ctx)
  local env = {}
  for _, k in ipairs(BASE) do env[k] = _G[k] end
  env.pcall, env.xpcall = sandbox_pcall, sandbox_xpcall
  env.setmetatable = sandbox_setmetatable
  env.string, env.table, env.math, env.utf8 = string, table, math, utf8
  env.coroutine = sandbox_coroutine
  env.os = { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime, getenv = os.getenv }
  env.print = function(...)
    local parts = pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    M.log.info("%s", table.concat(parts, "\t", 1, parts.n))
  end
  -- Text chunks only, and in this environment unless the caller gives one.
  env.load = function(chunk, name, _, ...)
    if select("#", ...) == 0 then
      return load(chunk, name, "t", env)
    end
    return load(chunk, name, "t", (...))
  end
  env.collectgarbage = function(opt, ...)
    opt = opt or "collect"
    if not GC_OPTIONS[opt] then
      error(("collectgarbage(%q) is not available to apps"):format(opt), 2)
    end
    return collectgarbage(opt, ...)
  end

  local loaded = {}
  ctx.loaded = loaded
  ctx.files = ctx.files or {}
  ctx.digests = ctx.digests or {}
  env.require = function(name)
    if type(name) ~= "string" then error("require: module name must be a string", 2) end
    local v = loaded[name]
    if v ~= nil then return v end
    v = shared_module(name)
    if v ~= nil then return v end
    -- Dotted words only: no '/', '..', NUL or absolute path can steer the
    -- file name out of the app's directory.
    if name == "" or s_find(name, "[^%w_%-%.]") or s_find(name, "^%.") or s_find(name, "%.$")
        or s_find(name, "..", 1, true) then
      error(("require: bad module name %q (want words separated by dots, like 'lib.util')"):format(name), 2)
    end
    local rel = s_gsub(name, "%.", "/")
    local tried = {}
    for _, pattern in ipairs(ctx.path) do
      local path = s_gsub(pattern, "%?", function() return rel end)
      if file_exists(path) then
        local chunk, err = load_source(ctx, path, env)
        if not chunk then error(err, 0) end
        ctx.files[#ctx.files + 1] = path
        loading[#loading + 1] = path
        local r = chunk(name, path)
        loading[#loading] = nil
        if r == nil then r = loaded[name] end
        if r == nil then r = true end
        loaded[name] = r
        return r
      end
      ctx.digests[path] = false   -- created later, it changes what loads
      tried[#tried + 1] = "\n\tno file '" .. path .. "'"
    end
    error(("module '%s' not found (apps may require Lua files beside them, neffos and cjson):%s")
      :format(name, table.concat(tried)), 2)
  end
  env._G = env
  return env
end

-- ---------------------------------------------------------------------------
-- Loading an app. `main` is the app's main file, `dir` its directory. Runs
-- the top level in a fresh environment and validates what it returns.
-- Errors are raised (the host calls this under a traceback handler); the
-- result is a version record:
--   { servers = {desc, ...}, files = {path, ...}, env = env, main = main }
function M.load_app(main, dir, opts)
  opts = opts or {}
  -- The app's own directory only (neffos and cjson come from shared_module).
  local ctx = { files = { main }, digests = {}, path = { dir .. "/?.lua", dir .. "/?/init.lua" } }
  -- What this attempt read, kept even if it fails: the host skips a later
  -- change event that leaves these files as they were.
  M.last_digests = ctx.digests
  local env = M.new_env(ctx)
  local chunk, err = load_source(ctx, main, env)
  if not chunk then
    error(err, 0)
  end
  loading = { main }
  local ret = chunk()
  loading = {}
  local servers, verr = M.normalize_app(ret, opts.default_endpoint)
  if not servers then
    error(main .. ": " .. verr, 0)
  end
  local configs = {}
  for i, desc in ipairs(servers) do
    desc.endpoint = desc.endpoint or opts.default_endpoint or "/echo"
    configs[i] = M.endpoint_config(desc)
    codec.prepare(desc)
  end
  return { servers = servers, configs = configs, files = ctx.files, env = env, main = main,
           loaded = ctx.loaded, digests = ctx.digests }
end

return M
