-- neffos/testing.lua - what busted specs use under `neffos test APP`
-- (docs/lua-api.md, "Testing"; bindings/cmd_test.c runs them).
--
--   local testing = require "neffos.testing"
--   local app = testing.start()                 -- APP, on a free 127.0.0.1 port, in this process
--   local v1 = app:connect("v1")                -- a Lua neffos client, connected to namespace v1
--   assert.equal("echo back: hi", assert(v1:ask("echo", "hi")).body)
--   app:stop()
--
-- Every wait here (a dial, an ask, ns:wait, app:wait_log, testing.wait)
-- turns the event loop the app runs on, so its handlers and timers go on
-- while the spec waits, and every wait has a deadline (5 s by default).

local host = require "neffos.testing.host"
local raw = require "neffos.client.raw"
local client = require "neffos.client"

local M = {}

--- The APP given to `neffos test`.
M.app_path = host.app

local DEFAULT_TIMEOUT = 5

local function client_errors()
  local reg = debug.getregistry()
  return reg["neffos.client.errors"]
end

-- A client handler of a spec that raised fails the spec at its next wait.
local function raise_client_errors()
  local errs = client_errors()
  if errs and #errs > 0 then
    local first = tostring(errs[1]):gsub("\nstack traceback:.*", "")
    for i = #errs, 1, -1 do errs[i] = nil end
    error("a client handler failed: " .. tostring(first), 0)
  end
end

--- Runs the loop until cond() returns a true value (returned), or nil,
--- "timeout" after `timeout` seconds (default 5).
function M.wait(cond, timeout)
  local deadline = host.now() + (timeout or DEFAULT_TIMEOUT)
  while true do
    raise_client_errors()
    local v = cond()
    if v then return v end
    local left = deadline - host.now()
    if left <= 0 then return nil, "timeout" end
    raw.step(left < 0.05 and left or 0.05)
  end
end

--- Lets the loop run for `seconds` (real time).
function M.sleep(seconds)
  raw.run_loop(seconds)
  raise_client_errors()
end

-- ---------------------------------------------------------------------------
-- Clients: every event a test client receives is also kept in its inbox,
-- for ns:wait / room:wait.

local function take(conn, namespace, room, event)
  for i, msg in ipairs(conn._inbox) do
    if msg.namespace == namespace and msg.event == event and (room == nil or msg.room == room) then
      table.remove(conn._inbox, i)
      return msg
    end
  end
end

--- ns:wait(event [, timeout]): the next `event` this namespace connection
--- received (a broadcast, an emit), or nil, "timeout".
function client.NSConn:wait(event, timeout)
  return M.wait(function() return take(self.conn, self.namespace, nil, event) end, timeout)
end

--- room:wait(event [, timeout]): the same, for events sent to this room.
function client.Room:wait(event, timeout)
  return M.wait(function() return take(self.ns.conn, self.ns.namespace, self.name, event) end, timeout)
end

--- conn:wait_closed([timeout]): true once the server closed the connection.
function client.Conn:wait_closed(timeout)
  return M.wait(function() return self.raw == nil end, timeout)
end

-- ---------------------------------------------------------------------------
-- Apps

local App = {}
App.__index = App

--- testing.start([path] [, { fake_clock = true }]): starts the app (the
--- APP of `neffos test` by default) and returns it. A load error is raised
--- with the app's file:line.
function M.start(path, options)
  if type(path) == "table" then path, options = nil, path end
  options = options or {}
  path = path or M.app_path
  local h, err = host.start(path, options.fake_clock)
  if not h then error(err, 2) end
  local _, total = host.log_lines(math.maxinteger)
  return setmetatable({ h = h, path = path, log_from = total, clients = {},
                        port = h:port(), endpoints = h:endpoints() }, App)
end

--- app:url([endpoint]): ws://127.0.0.1:<port><endpoint> (the first endpoint by default).
function App:url(endpoint)
  return ("ws://127.0.0.1:%d%s"):format(self.port, endpoint or self.endpoints[1] or "/")
end

--- app:dial([namespaces] [, options]): a Lua client (neffos.dial) of this app;
--- options as neffos.dial's, plus endpoint. Raises if the dial fails.
function App:dial(namespaces, options)
  options = options or {}
  local endpoint = options.endpoint
  local opts = {}
  for k, v in pairs(options) do if k ~= "endpoint" then opts[k] = v end end
  opts.timeout = opts.timeout or DEFAULT_TIMEOUT
  local conn, err = client.dial(self:url(endpoint), namespaces or {}, opts)
  if not conn then error("dial " .. self:url(endpoint) .. ": " .. tostring(err), 2) end
  conn._inbox = {}
  self.clients[#self.clients + 1] = conn
  return conn
end

--- app:connect(namespace [, handlers] [, options]): dial and connect in one;
--- the namespace connection. Raises if either fails.
function App:connect(namespace, handlers, options)
  local namespaces = {}
  for k, v in pairs(handlers or {}) do namespaces[k] = v end
  if type(handlers) == "table" and handlers[namespace] == nil and next(handlers) ~= nil
      and type(select(2, next(handlers))) == "function" then
    namespaces = { [namespace] = handlers }   -- connect("v1", { event = fn }): handlers of v1
  end
  namespaces[namespace] = namespaces[namespace] or {}
  local conn = self:dial(namespaces, options)
  local ns, err = conn:connect(namespace)
  if not ns then error("connect " .. namespace .. ": " .. tostring(err), 2) end
  return ns
end

--- app:log(): the server's log lines ("level text") since the app started.
function App:log()
  return (host.log_lines(self.log_from))
end

--- app:wait_log(pattern [, timeout [, plain]]): the first log line since the
--- start matching the Lua pattern (or plain text), or nil, "timeout".
function App:wait_log(pattern, timeout, plain)
  return M.wait(function()
    for _, line in ipairs(host.log_lines(self.log_from)) do
      if line:find(pattern, 1, plain) then return line end
    end
  end, timeout)
end

--- app:advance(seconds): moves the fake clock (start with { fake_clock = true });
--- every timer and sleep that falls due runs. Returns how many fired.
function App:advance(seconds)
  local n = self.h:advance(seconds)
  M.sleep(0)
  return n
end

--- app:now(): the fake clock's time (0 at start), or nil on a real clock.
function App:now() return self.h:now() end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then error(err, 3) end
  f:write(text)
  f:close()
end

--- app:reload([files]): hot reload, as a save would do it. files maps file
--- names of the app (e.g. ["app.lua"]) to new source: the app is copied to
--- a temporary directory once (your files stay as they are) and served from
--- there. Returns true, or nil, "file:line: message" (the old code serves on).
function App:reload(files)
  if files == nil then return self.h:reload() end
  if not self.copy then
    local dir, main = self.h:dir()
    local p = io.popen("mktemp -d")
    local tmp = p:read("l")
    p:close()
    local ok = os.execute(("cp -R %s/. %s"):format(shell_quote(dir), shell_quote(tmp)))
    if not ok then error("cannot copy " .. dir .. " to " .. tmp, 2) end
    self.copy = tmp
    self.main_name = main:match("[^/]+$")
  end
  for name, text in pairs(files) do
    if name:find("%.%.") or name:sub(1, 1) == "/" then error("reload: bad file name " .. name, 2) end
    write_file(self.copy .. "/" .. name, text)
  end
  return self.h:reload(self.copy)
end

--- app:stop(): closes its clients and stops the app.
function App:stop()
  for _, conn in ipairs(self.clients) do conn:close() end
  self.clients = {}
  self.h:stop()
  if self.copy then
    os.execute("rm -rf " .. shell_quote(self.copy))
    self.copy = nil
  end
  raise_client_errors()
end

return M
