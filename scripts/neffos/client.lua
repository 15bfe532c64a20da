-- neffos/client.lua - the neffos client API in Lua (docs/lua-api.md, "Client"),
-- built on the C client of host/client/ ("neffos.client.raw", bindings/lua_client.c).
--
--   local conn, err = neffos.dial("ws://127.0.0.1:8080/echo", { v1 = { chat = function(ns, msg) end } })
--   local ns = conn:connect("v1")
--   local reply, err = ns:ask("echo", "hi", { timeout = 2 })
--
-- The same names as the server side and neffos.js: dial, connect, emit, ask,
-- join_room, room:emit, room:leave, disconnect, close; `nil, err` for
-- failures, seconds for time, tables for options. The handlers table has the
-- shape of a server's `namespaces` table. Inside the server a dial, an ask, a
-- connect or a join waits in the calling handler's coroutine (the loop goes
-- on); under `neffos test` it runs the loop until it is answered.

local raw = require "neffos.client.raw"

local M = {}

local OnNamespaceConnect    = "_OnNamespaceConnect"
local OnNamespaceConnected  = "_OnNamespaceConnected"
local OnNamespaceDisconnect = "_OnNamespaceDisconnect"
local OnRoomJoin            = "_OnRoomJoin"
local OnRoomJoined          = "_OnRoomJoined"
local OnRoomLeave           = "_OnRoomLeave"
local OnRoomLeft            = "_OnRoomLeft"
local OnAnyEvent            = "_OnAnyEvent"
local ErrBadNamespace       = "bad namespace"
local ErrWrite              = "write closed"

local Conn, NSConn, Room = {}, {}, {}
Conn.__index, NSConn.__index, Room.__index = Conn, NSConn, Room
M.Conn, M.NSConn, M.Room = Conn, NSConn, Room   -- the classes (neffos.testing adds waits)

local OPTIONS = { timeout = "number", headers = "table", reconnect = "number", native = "boolean" }

local function check_options(options)
  if options == nil then return {} end
  if type(options) ~= "table" then
    error("neffos.dial: options must be a table (timeout, headers, reconnect, native)", 3)
  end
  for k, v in pairs(options) do
    local want = OPTIONS[k]
    if not want then
      error(("neffos.dial: unknown option %s (known: timeout, headers, reconnect, native)"):format(tostring(k)), 3)
    end
    if type(v) ~= want then
      error(("neffos.dial: option %s must be a %s"):format(k, want), 3)
    end
  end
  return options
end

-- The handler for (namespace, event), falling back to _OnAnyEvent.
local function handler_of(conn, namespace, event)
  local events = conn.handlers[namespace]
  if type(events) ~= "table" then return nil end
  local h = events[event]
  if type(h) ~= "function" then h = events[OnAnyEvent] end
  if type(h) ~= "function" then return nil end
  return h
end

local function local_msg(ns, room, event, forced)
  return { namespace = ns.namespace, room = room or "", event = event, body = "",
           is_local = true, is_forced = forced or false, is_native = false, binary = false }
end

-- Runs a notification handler; what it returns is ignored.
local function fire(ns, msg)
  local h = handler_of(ns.conn, ns.namespace, msg.event)
  if h then h(ns, msg) end
end

-- Runs a handler that may refuse: returns nil, err when it did.
local function ask_handler(ns, msg)
  local h = handler_of(ns.conn, ns.namespace, msg.event)
  if not h then return nil end
  return h(ns, msg)
end

-- Option tables (docs/lua-api.md, "Conventions"): an unknown option is a coding mistake.
local function check_opts(opts, what, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table (%s)"):format(what, known), 4)
  end
  for k in pairs(opts) do
    if not known:find("%f[%w_]" .. tostring(k) .. "%f[^%w_]") then
      error(("%s: unknown option %s (known: %s)"):format(what, tostring(k), known), 4)
    end
  end
  return opts
end

-- { binary = bool } -> binary
local function send_opts(opts, what)
  return check_opts(opts, what, "binary").binary == true
end

-- { timeout = seconds } -> timeout or nil
local function ask_opts(opts, what)
  if type(opts) == "number" then
    error(("%s: the timeout goes in an option table: { timeout = %s }"):format(what, opts), 3)
  end
  local t = check_opts(opts, what, "timeout").timeout
  if t ~= nil and type(t) ~= "number" then error(what .. ": timeout must be seconds", 3) end
  return t
end

-- ---------------------------------------------------------------------------
-- Rooms

local function new_room(ns, name)
  return setmetatable({ ns = ns, name = name }, Room)
end

-- room:emit(event, body [, { binary = bool }]): true, or nil, "write closed".
function Room:emit(event, body, opts)
  return self.ns.conn:_send("", self.ns.namespace, self.name, event, body, false, send_opts(opts, "room:emit"))
end

-- room:ask(event, body [, { timeout = seconds }]): the answer msg, or nil, err.
function Room:ask(event, body, opts)
  return self.ns.conn:_ask(self.ns.namespace, self.name, event, body, ask_opts(opts, "room:ask"))
end

-- Leaves the room (docs/protocol.md §7.7): true, or nil, err (refused: the room stays).
function Room:leave()
  local ns = self.ns
  if ns.rooms[self.name] == nil then return true end
  local _, err = ns.conn:_ask(ns.namespace, self.name, OnRoomLeave, "")
  if err then return nil, err end
  ns.rooms[self.name] = nil
  fire(ns, local_msg(ns, self.name, OnRoomLeft))
  return true
end

-- ---------------------------------------------------------------------------
-- Namespace connections

local function new_nsconn(conn, name)
  return setmetatable({ conn = conn, namespace = name, rooms = {}, id = conn.id }, NSConn)
end

-- ns:emit(event, body [, { binary = bool }]): true, or nil, "write closed".
function NSConn:emit(event, body, opts)
  return self.conn:_send("", self.namespace, "", event, body, false, send_opts(opts, "ns:emit"))
end

-- ns:ask(event, body [, { timeout = seconds }]): the answer msg, or nil, err ("timeout", the
-- server's error text, "write closed").
function NSConn:ask(event, body, opts)
  return self.conn:_ask(self.namespace, "", event, body, ask_opts(opts, "ns:ask"))
end

function NSConn:join_room(name)
  if type(name) ~= "string" then error("join_room: the room name must be a string", 2) end
  local room = self.rooms[name]
  if room then return room end
  local _, err = self.conn:_ask(self.namespace, name, OnRoomJoin, "")
  if err then return nil, err end
  room = self.rooms[name] or new_room(self, name)
  self.rooms[name] = room
  fire(self, local_msg(self, name, OnRoomJoined))
  return room
end

function NSConn:room(name) return self.rooms[name] end

function NSConn:room_names()
  local list = {}
  for name in pairs(self.rooms) do list[#list + 1] = name end
  table.sort(list)
  return list
end

function NSConn:leave_all()
  for _, name in ipairs(self:room_names()) do
    local ok, err = self.rooms[name]:leave()
    if not ok then return nil, err end
  end
  return true
end

function NSConn:is_connected()
  return self.conn.conns[self.namespace] == self
end

-- Local cleanup of a namespace: its rooms, then the namespace (forced = by
-- the server or a close).
local function drop_ns(ns, forced)
  for _, name in ipairs(ns:room_names()) do
    ns.rooms[name] = nil
    fire(ns, local_msg(ns, name, OnRoomLeave, forced))
    fire(ns, local_msg(ns, name, OnRoomLeft, forced))
  end
  if ns.conn.conns[ns.namespace] == ns then ns.conn.conns[ns.namespace] = nil end
  fire(ns, local_msg(ns, "", OnNamespaceDisconnect, forced))
end

function NSConn:disconnect()
  if not self:is_connected() then return true end
  local _, err = self.conn:_ask(self.namespace, "", OnNamespaceDisconnect, "")
  if err then return nil, err end
  drop_ns(self, false)
  return true
end

-- ---------------------------------------------------------------------------
-- Connections

function Conn:_send(token, namespace, room, event, body, is_error, binary)
  if type(event) ~= "string" then error("emit: the event name must be a string", 3) end
  if body ~= nil and type(body) ~= "string" and type(body) ~= "number" then
    error("emit: the body must be a string", 3)
  end
  if not self.raw or not self.raw:send(token, namespace, room, event, body, is_error, binary) then
    return nil, ErrWrite
  end
  return true
end

function Conn:_ask(namespace, room, event, body, timeout)
  if type(event) ~= "string" then error("ask: the event name must be a string", 3) end
  if timeout ~= nil and type(timeout) ~= "number" then error("ask: timeout must be seconds", 3) end
  if not self.raw then return nil, ErrWrite end
  return self.raw:ask(namespace, room, event, body, timeout or self.options.timeout)
end

-- Connects a namespace the handlers declare: the ns, or nil, err.
function Conn:connect(name)
  if type(name) ~= "string" then error("connect: the namespace must be a string", 2) end
  local ns = self.conns[name]
  if ns then return ns end
  if type(self.handlers[name]) ~= "table" then return nil, ErrBadNamespace end
  ns = new_nsconn(self, name)
  local ok, err = ask_handler(ns, local_msg(ns, "", OnNamespaceConnect))
  if ok == nil and err ~= nil then return nil, err end
  local _, aerr = self:_ask(name, "", OnNamespaceConnect, "")
  if aerr then return nil, aerr end
  self.conns[name] = self.conns[name] or ns
  ns = self.conns[name]
  fire(ns, local_msg(ns, "", OnNamespaceConnected))
  return ns
end

function Conn:namespace(name) return self.conns[name] end

function Conn:is_closed() return self.raw == nil end

-- Closes the connection (a close frame 1000); no reconnection follows.
function Conn:close()
  self.closed_by_us = true
  if self.raw then self.raw:close() end
  return true
end

-- Answers a server ask (token) with what the handler gave.
local function reply(conn, msg, body, err)
  if err ~= nil then
    conn:_send(msg.token, msg.namespace, msg.room, msg.event, tostring(err), true)
  else
    conn:_send(msg.token, msg.namespace, msg.room, msg.event, body ~= nil and tostring(body) or "")
  end
end

local function ack(conn, msg, err)
  if err ~= nil then
    conn:_send(msg.token, msg.namespace, msg.room, msg.event, tostring(err), true)
  elseif conn.raw then
    conn.raw:ack(msg.token)   -- "<token>;;;;;;" (docs/protocol.md §5.7)
  end
end

-- Forced actions and the server's asks (docs/protocol.md §7.3, §7.5, §7.6, §7.7, §8.2).
local function on_ask(conn, msg)
  local ns = conn.conns[msg.namespace]
  local event = msg.event
  if event == OnNamespaceConnect then
    if type(conn.handlers[msg.namespace]) ~= "table" then return ack(conn, msg, ErrBadNamespace) end
    ns = ns or new_nsconn(conn, msg.namespace)
    conn.conns[msg.namespace] = ns
    ack(conn, msg)
    return fire(ns, local_msg(ns, "", OnNamespaceConnected))
  end
  if not ns then
    if event == OnNamespaceDisconnect then return ack(conn, msg) end
    return   -- neffos.js answers nothing for a namespace it has not connected
  end
  if event == OnNamespaceDisconnect then
    drop_ns(ns, true)
    return ack(conn, msg)
  elseif event == OnRoomJoin then
    if ns.rooms[msg.room] then return ack(conn, msg) end
    msg.is_forced = true
    local ok, err = ask_handler(ns, msg)
    if ok == nil and err ~= nil then return ack(conn, msg, err) end
    ns.rooms[msg.room] = new_room(ns, msg.room)
    ack(conn, msg)
    return fire(ns, local_msg(ns, msg.room, OnRoomJoined, true))
  elseif event == OnRoomLeave then
    if ns.rooms[msg.room] then
      msg.is_forced = true
      fire(ns, msg)
      ns.rooms[msg.room] = nil
      ack(conn, msg)
      return fire(ns, local_msg(ns, msg.room, OnRoomLeft, true))
    end
    return ack(conn, msg)
  end
  local h = handler_of(conn, msg.namespace, event)
  if not h then return reply(conn, msg, nil, "no handler for " .. event) end
  local ok, body, err = pcall(h, ns, msg)
  if not ok then
    reply(conn, msg, nil, tostring(body):gsub("^[^:\n ]+:%d+: ", ""))
    error(body, 0)   -- logged (or failing the spec) with its file:line
  end
  if body == nil and err ~= nil then return reply(conn, msg, nil, err) end
  return reply(conn, msg, body)
end

local function on_event(conn, msg)
  if conn._inbox then conn._inbox[#conn._inbox + 1] = msg end   -- neffos.testing's ns:wait
  local ns = conn.conns[msg.namespace]
  if not ns then return end   -- not connected here: neffos.js drops it too
  if msg.room ~= "" and not ns.rooms[msg.room] then return end
  return fire(ns, msg)
end

-- A raw frame of a native endpoint (docs/protocol.md §11): OnNativeMessage of namespace "".
local function on_native(conn, data, binary)
  local ns = conn.conns[""]
  local msg = { namespace = "", room = "", event = "_OnNativeMessage", body = data, binary = binary,
                is_native = true, is_local = false, is_forced = false }
  if conn._inbox then conn._inbox[#conn._inbox + 1] = msg end
  if ns then return fire(ns, msg) end
end

--- conn:write(s [, { binary = bool }]): one raw frame to a native endpoint ({ native = true });
--- true, or nil, "write closed".
function Conn:write(s, opts)
  if type(s) ~= "string" then error("conn:write: want a string", 2) end
  local binary = send_opts(opts, "conn:write")
  if self.raw == nil or not self.raw:write(s, binary) then return nil, ErrWrite end
  return true
end

local host = package.loaded["neffos.host"]

-- Reconnection like neffos.js (docs/protocol.md §13.6): every `reconnect`
-- seconds a new dial with X-Websocket-Reconnect: <tries>, then the
-- namespaces and rooms it had are connected and joined again, on the same
-- objects. Only inside the server (the handler of the close may wait there).
local function reconnect(conn, remembered)
  while not conn.closed_by_us do
    host.sleep(conn.options.reconnect)
    if conn.closed_by_us then return end
    conn.reconnect_tries = conn.reconnect_tries + 1
    if conn:_dial(conn.reconnect_tries) then
      conn.was_reconnected = true
      for name, rooms in pairs(remembered) do
        local ns = conn:connect(name)
        if ns then
          for _, room in ipairs(rooms) do ns:join_room(room) end
        end
      end
      return
    end
  end
end

local function on_close(conn, why)
  conn.raw = nil
  conn.close_reason = why
  local remembered = {}
  for name, ns in pairs(conn.conns) do
    remembered[name] = ns:room_names()
  end
  for _, ns in pairs(conn.conns) do drop_ns(ns, true) end
  if type(conn.on_close) == "function" then conn.on_close(conn, why) end
  if not conn.closed_by_us and conn.options.reconnect and conn.options.reconnect > 0 and host then
    reconnect(conn, remembered)
  end
end

function Conn:_dial(tries)
  local headers = {}
  for k, v in pairs(self.options.headers or {}) do headers[k] = v end
  if tries then headers["X-Websocket-Reconnect"] = tostring(tries) end
  local conn = self
  local r, id = raw.dial(self.url, function(kind, x, binary)
    if kind == "event" then return on_event(conn, x)
    elseif kind == "ask" then return on_ask(conn, x)
    elseif kind == "native" then return on_native(conn, x, binary)
    elseif kind == "close" then return on_close(conn, x) end
  end, headers, self.options.timeout, self.options.native)
  if not r then return nil, id end
  self.raw, self.id = r, id
  if self.options.native then   -- no handshake: namespace "" is there at once
    self.conns[""] = self.conns[""] or new_nsconn(self, "")
  end
  for _, ns in pairs(self.conns) do ns.id = id end
  return true
end

-- neffos.dial(url, namespaces [, options]): a connection, or nil, err.
-- options: timeout (seconds, for the dial and every ask), headers (a table of
-- HTTP headers), reconnect (seconds between tries; off by default).
function M.dial(url, namespaces, options)
  if type(url) ~= "string" then error("neffos.dial: url must be a string (ws://host:port/endpoint)", 2) end
  if type(namespaces) ~= "table" then
    error("neffos.dial: namespaces must be a table { [namespace] = { [event] = handler } }", 2)
  end
  options = check_options(options)
  local conn = setmetatable({ url = url, handlers = namespaces, options = options, conns = {},
                              reconnect_tries = 0, was_reconnected = false }, Conn)
  local ok, err = conn:_dial()
  if not ok then return nil, err end
  return conn
end

return M
