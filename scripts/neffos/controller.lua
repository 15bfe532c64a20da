-- neffos/controller.lua - Go neffos's NewStruct in Lua: a table of methods
-- becomes a namespace's events, and every namespace connection gets its own
-- instance (`self`), made by an optional constructor.
--
--   local Chat = { suffix = "!" }                    -- fields: defaults every instance sees
--   function Chat:chat(msg) return msg.body .. self.suffix end
--   namespaces = { chat = neffos.controller(Chat) }
--
-- Pure Lua (busted tests it without the host): it only builds the events
-- table that the server description already understands.

local M = {}

-- System events: the Go method names (NewStruct matches OnNamespaceConnected
-- and the others by name, whatever the matcher) and their wire names.
local SYSTEM = {
  OnNamespaceConnect = "_OnNamespaceConnect", OnNamespaceConnected = "_OnNamespaceConnected",
  OnNamespaceDisconnect = "_OnNamespaceDisconnect", OnRoomJoin = "_OnRoomJoin",
  OnRoomJoined = "_OnRoomJoined", OnRoomLeave = "_OnRoomLeave", OnRoomLeft = "_OnRoomLeft",
  OnAnyEvent = "_OnAnyEvent", OnNativeMessage = "_OnNativeMessage",
}
for _, wire in pairs(SYSTEM) do SYSTEM[wire] = wire end

-- The per-connection store key of a namespace's instance: one controller
-- per namespace, and the store dies with the connection.
local function store_key(ns)
  return "neffos.controller/" .. ns.namespace
end

--- Go's EventPrefixMatcher: methods whose name starts with prefix are events, named as the method.
function M.prefix_matcher(prefix)
  if type(prefix) ~= "string" then error("neffos.prefix_matcher: prefix must be a string", 2) end
  return function(name)
    if name:sub(1, #prefix) == prefix then return name end
    return nil
  end
end

--- Go's EventTrimPrefixMatcher: methods whose name starts with prefix are events, named without it.
function M.trim_prefix_matcher(prefix)
  if type(prefix) ~= "string" then error("neffos.trim_prefix_matcher: prefix must be a string", 2) end
  return function(name)
    if name:sub(1, #prefix) == prefix and #name > #prefix then return name:sub(#prefix + 1) end
    return nil
  end
end

local OPTS = { matcher = "function", new = "function" }

--- neffos.controller(methods [, { matcher = fn(name) -> event or nil, new = fn(ns) -> table or nil, err }])
-- Returns the events table of a namespace. Every function field of methods
-- that the matcher accepts (all of them by default) is an event whose
-- handler is called as methods.f(self, msg); the Go system-event names
-- (OnNamespaceConnected, ...) or the wire names are system events whatever
-- the matcher says. self is the namespace connection's instance: the table
-- `new(ns)` returned (or a new one), with ns, conn and id set, and the
-- methods' table (fields and methods) behind it.
function M.controller(methods, opts)
  if type(methods) ~= "table" then
    error(("neffos.controller: methods must be a table (got %s)"):format(type(methods)), 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("neffos.controller: options must be a table", 2) end
  for k, v in pairs(opts) do
    if not OPTS[k] then
      error(("neffos.controller: unknown option %s (known: matcher, new)"):format(tostring(k)), 2)
    end
    if type(v) ~= OPTS[k] then
      error(("neffos.controller: option %s must be a %s (got %s)"):format(k, OPTS[k], type(v)), 2)
    end
  end
  local matcher, new = opts.matcher, opts.new
  local meta = { __index = methods }

  -- The instance of this namespace connection, made on first need: at the
  -- client's connect, or at the first event of a server-forced connect.
  local function instance(ns)
    local conn = ns.conn
    local key = store_key(ns)
    local self = conn and conn:get(key)
    if self then return self end
    local fields = {}
    if new then
      local made, err = new(ns)
      if made == nil and err ~= nil then return nil, err end
      fields = made or {}   -- nothing returned: an instance without fields of its own
      if type(fields) ~= "table" then
        error(("neffos.controller: new returned a %s (want a table, or nil, err)"):format(type(fields)), 0)
      end
    end
    self = setmetatable(fields, meta)
    self.ns, self.conn, self.id = ns, conn, ns.id
    if conn then conn:set(key, self) end
    return self
  end

  local events = {}
  local function bind(event, name)
    if events[event] then
      error(("neffos.controller: methods %s and another both map to event %q"):format(name, event), 3)
    end
    events[event] = function(ns, msg)
      local self, err = instance(ns)
      if not self then return nil, err end
      return methods[name](self, msg)
    end
  end
  for name, fn in pairs(methods) do
    if type(name) == "string" and type(fn) == "function" then
      if SYSTEM[name] then
        bind(SYSTEM[name], name)
      else
        local event = name
        if matcher then event = matcher(name) end
        if event ~= nil then
          if type(event) ~= "string" or event == "" then
            error(("neffos.controller: the matcher mapped %s to %s (want a non-empty string or nil)")
              :format(name, tostring(event)), 2)
          end
          bind(event, name)
        end
      end
    end
  end

  -- The instance is made when the client connects (so `new` may refuse the
  -- connect with nil, err) and dropped when the namespace disconnects.
  local on_connect = events._OnNamespaceConnect
  events._OnNamespaceConnect = function(ns, msg)
    local self, err = instance(ns)
    if not self then return nil, err end
    if on_connect then return on_connect(ns, msg) end
  end
  local on_disconnect = events._OnNamespaceDisconnect
  events._OnNamespaceDisconnect = function(ns, msg)
    local r = on_disconnect and table.pack(on_disconnect(ns, msg)) or { n = 0 }
    -- A refused disconnect (nil, err) keeps the namespace and its instance.
    if not (r[1] == nil and r[2] ~= nil) and ns.conn then ns.conn:set(store_key(ns), nil) end
    return table.unpack(r, 1, r.n)
  end
  return events
end

return M
