-- A bridge between two deployments (spec/author/client_bridge.test.mjs): its handlers dial
-- the upstream server (UPSTREAM) with the Lua client, on this server's loop.
local neffos = require "neffos"
local state = neffos.state
local UPSTREAM = os.getenv("UPSTREAM")

local function broadcast_here(event, body)
  for _, server in pairs(neffos.servers()) do
    server:broadcast { namespace = "v1", event = event, body = body }
  end
end

-- The long-lived upstream connection: events from there are broadcast here.
local function upstream()
  if state.up and not state.up:is_closed() then return state.up end
  local conn, err = neffos.dial(UPSTREAM, {
    v1 = {
      news = function(_, msg) broadcast_here("news", "via bridge: " .. msg.body) end,
      question = function(_, msg)
        neffos.sleep(0.01)   -- a client handler may wait too
        if msg.body == "boom" then error("bridge handler boom") end
        return "bridge answers " .. msg.body
      end,
    },
  }, { timeout = 5, reconnect = 0.1 })
  if not conn then return nil, err end
  local v1, cerr = conn:connect("v1")
  if not v1 then return nil, cerr end
  assert(v1:join_room("bridges"))
  state.up = conn
  return conn
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    v1 = {
      ping = function() return "pong" end,
      -- One dial per call, closed after: the handler waits, the server does not.
      relay = function(_, msg)
        local conn, err = neffos.dial(UPSTREAM, { v1 = {} }, { timeout = 5 })
        if not conn then return nil, "dial: " .. err end
        local v1, cerr = conn:connect("v1")
        if not v1 then return nil, "connect: " .. cerr end
        local reply, aerr = v1:ask(msg.body, "x", { timeout = 10 })
        conn:close()
        if not reply then return nil, aerr end
        return "relayed " .. reply.body
      end,
      subscribe = function()
        local conn, err = upstream()
        if not conn then return nil, err end
        return "subscribed as " .. conn.id
      end,
      ask_back = function(_, msg)
        local conn, err = upstream()
        if not conn then return nil, err end
        local ns = conn:namespace("v1")
        if not ns then return nil, "not connected upstream" end
        local reply, aerr = ns:ask("ask_back", msg.body)
        if not reply then return nil, aerr end
        return reply.body
      end,
      -- A timer dials: neffos.after's function runs on the loop like a handler.
      via_timer = function(_, msg)
        state.timer_result = nil
        neffos.after(0, function()
          local conn, err = neffos.dial(UPSTREAM, { v1 = {} }, { timeout = 5 })
          if not conn then state.timer_result = "dial: " .. err return end
          local v1 = assert(conn:connect("v1"))
          local reply, aerr = v1:ask("echo", msg.body, { timeout = 5 })
          conn:close()
          state.timer_result = reply and reply.body or ("ask: " .. aerr)
        end)
        return "scheduled"
      end,
      timer_result = function() return state.timer_result or "pending" end,
      upstream_state = function()
        local conn = state.up
        if not conn then return "none" end
        local v1 = conn:namespace("v1")
        return ("closed=%s reconnected=%s tries=%d rooms=%s"):format(tostring(conn:is_closed()),
          tostring(conn.was_reconnected), conn.reconnect_tries, v1 and table.concat(v1:room_names(), ",") or "-")
      end,
    },
  },
}
