---@meta neffos
-- LuaLS (lua-language-server) annotations of the neffos Lua API, for editors: completion,
-- hover docs and type checks of apps. Nothing runs this file. Installed with the server in
-- share/neffos/meta/; point an app's .luarc.json at it:
--   { "workspace.library": ["/usr/share/neffos/meta"], "runtime.version": "Lua 5.4" }
-- The reference is docs/lua-api.md; spec/lua/meta_spec.lua checks that every function and
-- field the bindings register is annotated here, and nothing more.
-- The convention (docs/lua-api.md, "Conventions"): a call that can fail returns nil, err;
-- options are a table; time is in seconds; listings are lists of objects.

---@class neffos.Msg A message as a handler receives it (a new table each time).
---@field namespace string
---@field room string "" outside rooms
---@field event string
---@field body string binary-safe
---@field err string? the error text of an error message (an error answer to an ask)
---@field token string? the wait token of a message that expects an answer
---@field binary boolean it came in a binary frame
---@field is_local boolean raised by the server itself (a forced join's OnRoomJoin...)
---@field is_forced boolean a server-forced action
---@field is_native boolean a raw frame (OnNativeMessage)
local Msg = {}

---Decodes the body with the server's codec (JSON unless the server says otherwise).
---@return any|nil value
---@return string? err
function Msg:unmarshal() end

---@class neffos.SendOptions
---@field binary boolean? send a binary frame

---@class neffos.AskOptions
---@field binary boolean? send a binary frame
---@field timeout number? seconds; default 30 (the server's --ask-timeout-ms)

---@class neffos.BroadcastOptions
---@field binary boolean? send binary frames
---@field except (neffos.Conn|neffos.NS|string)? not to this connection (conn, ns) or to this ID (every connection with it)
---@field to string? only to the connections with this ID

---@class neffos.NSBroadcastOptions: neffos.BroadcastOptions
---@field room string? to one room of the namespace (joined by this connection or not)

---@class neffos.WriteOptions
---@field binary boolean? a binary frame

---A connection's membership of one namespace (Go's NSConn). After the namespace disconnected
---(or the connection closed) it behaves as closed: sends return nil, "write closed".
---@class neffos.NS
---@field id string the connection ID
---@field namespace string the namespace name
---@field conn neffos.Conn
---@field server neffos.Server
local NS = {}

---Sends an event to this client. True, or nil, "write closed".
---@param event string
---@param body? string
---@param opts? neffos.SendOptions
---@return true|nil ok
---@return string? err
function NS:emit(event, body, opts) end

---Asks this client and waits (inside a handler or timer). The answer, or nil, err
---("timeout", "write closed", the client's error text).
---@param event string
---@param body? string
---@param opts? neffos.AskOptions
---@return neffos.Msg|nil answer
---@return string? err
function NS:ask(event, body, opts) end

---To every connection of this namespace (or of opts.room), this one included unless
---opts.except says otherwise. The number of local receivers, or nil, err.
---@param event string
---@param body? string
---@param opts? neffos.NSBroadcastOptions
---@return integer|nil receivers
---@return string? err
function NS:broadcast(event, body, opts) end

---Server-forced join; waits for the client. The room, or nil, err.
---@param name string
---@return neffos.Room|nil room
---@return string? err
function NS:join_room(name) end

---A joined room, or nil.
---@param name string
---@return neffos.Room?
function NS:room(name) end

---The joined rooms.
---@return neffos.Room[]
function NS:rooms() end

---Leaves every room, one after the other. True, or nil, err.
---@return true|nil ok
---@return string? err
function NS:leave_all() end

---Server-forced namespace disconnect. True, or nil, err.
---@return true|nil ok
---@return string? err
function NS:disconnect() end

---False once the namespace disconnected.
---@return boolean
function NS:is_connected() end

---A room this connection joined (Go's Room). Two room objects of one room compare equal.
---@class neffos.Room
---@field name string
---@field ns neffos.NS
local Room = {}

---Sends an event to this client, in this room. True, or nil, "write closed".
---@param event string
---@param body? string
---@param opts? neffos.SendOptions
---@return true|nil ok
---@return string? err
function Room:emit(event, body, opts) end

---Asks this client inside this room and waits. The answer, or nil, err.
---@param event string
---@param body? string
---@param opts? neffos.AskOptions
---@return neffos.Msg|nil answer
---@return string? err
function Room:ask(event, body, opts) end

---To every member of this room, this connection included unless opts.except says otherwise.
---The number of local receivers, or nil, err.
---@param event string
---@param body? string
---@param opts? neffos.BroadcastOptions
---@return integer|nil receivers
---@return string? err
function Room:broadcast(event, body, opts) end

---Server-forced leave; waits for the client. True, or nil, err.
---@return true|nil ok
---@return string? err
function Room:leave() end

---The upgrade request of a connection.
---@class neffos.Request
---@field method string
---@field path string
---@field query string
---@field remote_addr string the peer's address
---@field headers table<string, string> first value of each header; lookups ignore case

---A WebSocket connection (Go's Conn).
---@class neffos.Conn
---@field id string
---@field server neffos.Server
---@field request neffos.Request
---@field reconnect_tries integer what the client said in its handshake
---@field was_reconnected boolean Go's WasReconnected: reconnect_tries > 0
local Conn = {}

---Stores a value in the per-connection store.
---@param key any not nil
---@param value any
function Conn:set(key, value) end

---A value of the per-connection store.
---@param key any
---@return any
function Conn:get(key) end

---Adds `by` (default 1) to a number in the store; returns the new number.
---@param key any
---@param by? number
---@return number
function Conn:increment(key, by) end

---Subtracts `by` (default 1) from a number in the store; returns the new number.
---@param key any
---@param by? number
---@return number
function Conn:decrement(key, by) end

---The connected namespace, or nil.
---@param name string
---@return neffos.NS?
function Conn:namespace(name) end

---The connected namespaces.
---@return neffos.NS[]
function Conn:namespaces() end

---Server-forced namespace connect. The ns, or nil, err.
---@param name string
---@return neffos.NS|nil ns
---@return string? err
function Conn:connect(name) end

---Sends a close frame (code default 1000; 1000-1003, 1007-1014, 3000-4999) and closes. True.
---@param code? integer
---@param reason? string at most 123 bytes of UTF-8
---@return true
function Conn:close(code, reason) end

---One native frame, no neffos framing. True, or nil, "write closed".
---@param body string
---@param opts? neffos.WriteOptions
---@return true|nil ok
---@return string? err
function Conn:write(body, opts) end

---True once the connection is closing or gone.
---@return boolean
function Conn:is_closed() end

---A broadcast or a server ask: a neffos message plus options.
---@class neffos.ServerBroadcast
---@field namespace string?
---@field room string?
---@field event string
---@field body string?
---@field binary boolean?
---@field to string? only the connections with this ID
---@field except (neffos.Conn|neffos.NS|string)?

---@class neffos.ServerAsk
---@field to string the ID to ask (every connection with it; the first answer wins)
---@field namespace string?
---@field room string?
---@field event string
---@field body string?
---@field binary boolean?
---@field timeout number? seconds

---One endpoint's server (Go's Server). Kept across reloads.
---@class neffos.Server
---@field endpoint string its path
local Server = {}

---The number of local receivers, or nil, err.
---@param msg neffos.ServerBroadcast
---@return integer|nil receivers
---@return string? err
function Server:broadcast(msg) end

---Asks by ID and waits for the first answer. The answer, or nil, err.
---@param msg neffos.ServerAsk
---@return neffos.Msg|nil answer
---@return string? err
function Server:ask(msg) end

---Open connections (this process).
---@return integer
function Server:count() end

---Every open connection (this process).
---@return neffos.Conn[]
function Server:connections() end

---The connection with this ID that connected last, or nil.
---@param id string
---@return neffos.Conn?
function Server:get(id) end

---Every open connection with this ID, oldest first.
---@param id string
---@return neffos.Conn[]
function Server:get_all(id) end

---The namespace connections of a namespace, or of one of its rooms (this process).
---@param namespace string
---@param room? string
---@return neffos.NS[]
function Server:members(namespace, room) end

---A timer of neffos.after / neffos.every.
---@class neffos.Timer
local Timer = {}

---Stops the timer (no-op if it already fired or was cancelled).
function Timer:cancel() end

---neffos.shared: the dictionary every worker of the process shares (--shared-dict-bytes).
---Values are strings, numbers and booleans; ttl in seconds (nil or 0: never expires).
---@class neffos.Shared
local Shared = {}

---@param key string
---@return string|number|boolean|nil
function Shared:get(key) end

---@param key string
---@param value string|number|boolean|nil nil deletes
---@param ttl number?
---@return true|nil ok
---@return string? err "no memory" (full), "key too long", "empty key"
function Shared:set(key, value, ttl) end

---Like set, only if the key is absent.
---@param key string
---@param value string|number|boolean
---@param ttl number?
---@return true|nil ok
---@return string? err "exists", "no memory", ...
function Shared:add(key, value, ttl) end

---Adds `by` atomically; an absent key starts from `init` (else "not found").
---@param key string
---@param by number
---@param init number?
---@param init_ttl number?
---@return number|nil value
---@return string? err "not found", "not a number", "no memory"
function Shared:incr(key, by, init, init_ttl) end

---@param key string
function Shared:delete(key) end

---@param max integer? at most this many (default 1024, 0 = all)
---@return string[]
function Shared:keys(max) end

function Shared:flush_all() end

---@return integer bytes
function Shared:capacity() end

---@return integer bytes
function Shared:used() end

---@class neffos.Worker
---@field id integer this worker, 1 .. count
---@field count integer --workers

---@class neffos.TimerOptions
---@field worker integer? only this worker arms the timer (1: once per process)

---@alias neffos.Handler fun(ns: neffos.NS, msg: neffos.Msg): (string|number|nil), string?

---@class neffos.Timeouts
---@field read number? seconds without incoming data before the connection is closed
---@field write number? seconds output may stay unsent

---@class neffos.ReloadInfo
---@field version integer
---@field files string[]
---@field endpoints string[]
---@field loaded_at number

---@class neffos.ServerDescription
---@field endpoint string? the WebSocket path (default: the --endpoint flag)
---@field namespaces table<string, table<string, neffos.Handler>>
---@field id (fun(req: neffos.Request): string|number|nil)?
---@field on_connect (fun(conn: neffos.Conn): nil|(nil, string))?
---@field on_disconnect fun(conn: neffos.Conn)?
---@field on_reload fun(old: neffos.ReloadInfo)?
---@field timeouts neffos.Timeouts?
---@field native_only boolean?
---@field codec neffos.Codec? how tables become bodies and back (default: JSON)
---@field on_upgrade_error fun(req: neffos.Request, reason: string, text: string)? Go's OnUpgradeError

---@class neffos.Codec
---@field encode fun(value: any): string|nil, string?
---@field decode fun(bytes: string): any, string?
---@field binary boolean? encoded bodies go in binary frames

---@class neffos.ControllerOptions
---@field matcher (fun(event: string): string|nil)? maps an incoming event to a method name (nil: not ours)
---@field new (fun(ns: neffos.NS): table|nil, string?)? the per-connection instance (nil, err refuses the connect)

---@class neffos.ScaleOut
---@field redis string? redis://host:port
---@field nats string? nats://host:port
---@field prefix string?

---@class neffos.Log
---@field debug fun(fmt: any, ...: any)
---@field info fun(fmt: any, ...: any)
---@field warn fun(fmt: any, ...: any)
---@field error fun(fmt: any, ...: any)

---@class neffos.Json
---@field null lightuserdata JSON's null
local Json = {}

---The JSON text, or nil, err.
---@param value any
---@return string|nil text
---@return string? err
function Json.encode(value) end

---The value, or nil, err (bad JSON).
---@param text string
---@return any|nil value
---@return string? err
function Json.decode(text) end

---@class neffos
---@field OnNamespaceConnect string "_OnNamespaceConnect"
---@field OnNamespaceConnected string "_OnNamespaceConnected"
---@field OnNamespaceDisconnect string "_OnNamespaceDisconnect"
---@field OnRoomJoin string "_OnRoomJoin"
---@field OnRoomJoined string "_OnRoomJoined"
---@field OnRoomLeave string "_OnRoomLeave"
---@field OnRoomLeft string "_OnRoomLeft"
---@field OnAnyEvent string "_OnAnyEvent"
---@field OnNativeMessage string "_OnNativeMessage"
---@field ErrBadNamespace string "bad namespace"
---@field ErrBadRoom string "bad room"
---@field ErrWrite string "write closed"
---@field _VERSION string
---@field state table kept across hot reloads (this worker's)
---@field worker neffos.Worker
---@field shared neffos.Shared|false false with --shared-dict-bytes 0 (or outside the server)
---@field log neffos.Log
---@field json neffos.Json
local neffos = {}

---Runs fn once after `seconds`, in a coroutine (it may wait).
---@param seconds number
---@param fn fun()
---@param options neffos.TimerOptions?
---@return neffos.Timer
function neffos.after(seconds, fn, options) end

---Runs fn every `seconds` (> 0), each time in a coroutine.
---@param seconds number
---@param fn fun()
---@param options neffos.TimerOptions?
---@return neffos.Timer
function neffos.every(seconds, fn, options) end

---Waits inside a handler or a timer without blocking the server.
---@param seconds number
function neffos.sleep(seconds) end

---The servers of this app, by endpoint.
---@return table<string, neffos.Server>
function neffos.servers() end

---Validates a server description (raises with file:line) and returns it.
---@param desc neffos.ServerDescription
---@return neffos.ServerDescription
function neffos.server(desc) end

---True for a table neffos.server returned.
---@param t any
---@return boolean
function neffos.is_server(t) end

---Scale out over Redis or NATS from the app (read once at start; the flags win).
---@param opts neffos.ScaleOut
function neffos.scale_out(opts) end

---@class neffos.DialOptions
---@field timeout number? seconds, for the dial and every ask (default 5)
---@field headers table<string, string>? extra request headers
---@field reconnect number? seconds between redials after an unexpected close (like neffos.js)
---@field native boolean? a native-only endpoint: no neffos handshake

---A neffos client on the server's loop (docs/lua-api.md, "Client"): waits in the calling handler or
---timer; the connection, or nil, err. Its ns and room have emit, ask, join_room, leave, disconnect.
---@param url string ws://host:port/path
---@param namespaces table<string, table<string, neffos.Handler>>
---@param options neffos.DialOptions?
---@return table|nil conn
---@return string? err
function neffos.dial(url, namespaces, options) end

---Go's NewStruct: a namespace's handler table from a table of methods, called as (self, msg)
---with one instance per namespace connection (self.ns, self.conn, self.id set).
---@param methods table
---@param opts neffos.ControllerOptions?
---@return table handlers
function neffos.controller(methods, opts) end

---Go's EventPrefixMatcher: events starting with p, method name unchanged.
---@param p string
---@return fun(event: string): string|nil
function neffos.prefix_matcher(p) end

---Go's EventTrimPrefixMatcher: events starting with p, method name without it.
---@param p string
---@return fun(event: string): string|nil
function neffos.trim_prefix_matcher(p) end

---Go's neffos.Marshal with the default codec (JSON).
---@param value any
---@return string|nil bytes
---@return string? err
function neffos.marshal(value) end

---Go's Message.Unmarshal with the default codec (JSON).
---@param bytes string
---@return any|nil value
---@return string? err
function neffos.unmarshal(bytes) end

return neffos
