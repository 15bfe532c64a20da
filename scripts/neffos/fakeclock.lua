-- neffos/fakeclock.lua - the clock of `neffos test` apps started with
-- { fake_clock = true } (bindings/cmd_test.c installs it before the app
-- loads). neffos.after / every / sleep then wait for app:advance(seconds)
-- instead of real time: advance fires every timer that falls due, in time
-- order (ties in creation order), each as its own run like a real timer, so
-- timer functions may broadcast, ask and sleep. Runs in the app's state.

local M = {}

local host = package.loaded["neffos.host"]
local hooks
local now = 0
local seq = 0
local pending = {}   -- { due =, seq =, fn = | wake =, interval =, version =, cancelled = }

local Timer = {}
Timer.__index = Timer
function Timer:cancel() self.cancelled = true end

local function add(t)
  seq = seq + 1
  t.seq = seq
  pending[#pending + 1] = t
  return t
end

function M.install(h)
  hooks = h
  host.timer = function(seconds, fn, rep)
    return add(setmetatable({ due = now + seconds, fn = fn, interval = rep and seconds or nil,
                              version = hooks.top_level_version() }, Timer))
  end
  host.sleep = function(seconds)
    hooks.park(function(handle) add({ due = now + seconds, wake = handle, version = 0 }) end)
  end
end

local MAX_FIRINGS = 100000

-- Moves the clock by dt seconds; returns how many timers fired.
function M.advance(dt)
  local target = now + dt
  local fired = 0
  while true do
    local best, at
    for i, t in ipairs(pending) do
      if not t.cancelled and t.due <= target
          and (not best or t.due < best.due or (t.due == best.due and t.seq < best.seq)) then
        best, at = t, i
      end
    end
    if not best then break end
    now = best.due
    if best.interval then
      best.due = best.due + best.interval
      seq = seq + 1
      best.seq = seq
    else
      table.remove(pending, at)
    end
    fired = fired + 1
    if fired > MAX_FIRINGS then
      error(("app:advance(%g): more than %d timers fell due"):format(dt, MAX_FIRINGS), 0)
    end
    if best.wake then hooks.unpark(best.wake) else hooks.spawn(best.fn) end
  end
  now = target
  for i = #pending, 1, -1 do
    if pending[i].cancelled then table.remove(pending, i) end
  end
  return fired
end

function M.now() return now end

-- After a reload: the timers of the replaced top levels go, like real ones.
function M.cancel_before(version)
  for _, t in ipairs(pending) do
    if t.version and t.version ~= 0 and t.version < version then t.cancelled = true end
  end
end

return M
