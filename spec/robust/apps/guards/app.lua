-- Robustness test app (spec/robust/guards.test.mjs): app code that tries to escape the
-- sandbox's guards (finalizers, <close> handlers, long C calls, the file loader) and
-- conn:close with codes or reasons a sender may not use. Namespace "g".
local neffos = require "neffos"
-- It reaches for what the sandbox hides and replaces string functions, on purpose; its
-- memory hogs fill tables nobody reads:
-- luacheck: ignore 113 122 143 211 241

local function looping_close()
  return setmetatable({}, { __close = function() while true do end end })
end

-- Keeps 300 MiB (bounded, so that a server without the cap does not eat the machine).
local function hogging_close()
  return setmetatable({}, { __close = function()
    local t = {}
    for i = 1, 300 * 256 do t[i] = string.rep("x", 4096) .. i end
  end })
end

-- Fills the Lua heap to `margin` bytes below the cap (cap_mb, the server's
-- --lua-memory-limit-mb) without raising: allocation by allocation, counted.
local hog
local function fill_heap(cap_mb, margin)
  local function free() return cap_mb * 1024 * 1024 - collectgarbage("count") * 1024 end
  hog = {}
  local n = 0
  while free() > 200000 do n = n + 1; hog[n] = string.rep("y", 65536) .. n end
  collectgarbage("collect")
  local cur = hog
  while free() > margin do local t = {}; cur.n = t; cur = t end
end

local OUTSIDE = "spec/robust/apps/?.lua"
local parked   -- a coroutine left dead with a pending <close>

-- Tries every way a file outside the app directory could be reached; returns what worked.
local function escapes()
  local got = {}
  local function try(what, fn)
    local ok, v = pcall(fn)
    if ok and v ~= nil then got[#got + 1] = what end
  end
  -- spec/robust/apps/outside.lua is a Lua file beside this app's directory (the server runs
  -- from the repository root).
  try("neffos.new_env", function() return neffos.new_env({ path = { OUTSIDE } }).require("outside") end)
  try("neffos.load_app", function() return neffos.load_app("spec/robust/apps/outside.lua", "spec/robust/apps") end)
  try("require ..", function() return require("..outside") end)
  try("require /", function() return require("/outside") end)
  try("package", function() return package end)
  try("io", function() return io end)
  try("dofile", function() return dofile end)
  try("loadfile", function() return loadfile end)
  try("debug", function() return debug end)
  try("os.remove", function() return os.remove end)
  try("load binary", function() return load(string.dump(function() return 1 end)) end)
  -- A replaced string function must not steer the loader's paths.
  local gsub = string.gsub
  string.gsub = function() return "spec/robust/apps/outside.lua" end
  try("string.gsub swap", function() return require("mod_that_does_not_exist") end)
  string.gsub = gsub
  try("metatable of server", function() return type(getmetatable(neffos.servers()["/echo"])) == "table" or nil end)
  return #got == 0 and "none" or table.concat(got, ",")
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    g = {
      echo = function(ns, msg) return msg.body end,
      -- An object whose finalizer never returns.
      gc = function(ns, msg)
        setmetatable({}, { __gc = function() while true do end end })
        collectgarbage()
        return "made"
      end,
      -- A finalizer slipped into the host's conn metatable: every later conn would get it.
      inject = function(ns, msg)
        getmetatable(ns.conn).__gc = function() while true do end end
        return "injected"
      end,
      collect = function(ns, msg)
        collectgarbage()
        return "collected"
      end,
      close_loop = function(ns, msg)
        local guard <close> = looping_close()
        error("boom")
      end,
      close_alloc = function(ns, msg)
        local guard <close> = hogging_close()
        error("boom")
      end,
      -- Waits with a looping <close> pending: a drain abandons it and must close it in bounded time.
      nap_close = function(ns, msg)
        local guard <close> = looping_close()
        neffos.sleep(30)
        return "rested"
      end,
      -- A coroutine that dies over budget with a looping <close> pending...
      park = function(ns, msg)
        parked = coroutine.create(function()
          local guard <close> = looping_close()
          while true do end
        end)
        coroutine.resume(parked)
        return "parked"
      end,
      -- ... closed later, in a fresh slice.
      unpark = function(ns, msg)
        coroutine.close(parked)
        return "unparked"
      end,
      -- The plausible key=value parser of issue 11.
      kv = function(ns, msg)
        local k, v = msg.body:match("^%s*(.-)%s*=%s*(.-)%s*$")
        return k and (k .. "=" .. v) or "no match"
      end,
      -- One C call that no hook can interrupt: 10^12 moves of nil.
      block = function(ns, msg)
        table.move({}, 1, 1e12, 2)
        return "moved"
      end,
      escape = function(ns, msg) return escapes() end,
      patterns = function(ns, msg) return require("patterns")() end,
      close = function(ns, msg)
        local code, reason = msg.body:match("^(%d+) ?(.*)$")
        if reason == "BAD" then reason = "\xff\xfe" end
        ns.conn:close(tonumber(code), reason)
        return "closing"
      end,
      -- the app's pcall around code that fills the heap to the cap and keeps what it filled: the
      -- pcall must return false, "not enough memory" here, not raise past it (scripts/neffos.lua)
      pcall_full = function(ns, msg)
        local kept, n = {}, 0
        local ok, err = pcall(function() while true do n = n + 1; kept[n] = { n } end end)
        local full = n
        kept = nil
        return ("caught %s %s %s"):format(tostring(ok), tostring(err), full > 1000 and "filled" or "empty")
      end,
      -- "cap_mb margin": the heap `margin` bytes below the cap, then a forced connect of its own
      -- connection, which runs the local OnNamespaceConnect (it refuses) inside this handler
      connect_full = function(ns, msg)
        local cap_mb, margin = msg.body:match("^(%d+) (%d+)$")
        local conn = ns.conn
        local connect = conn.connect
        fill_heap(tonumber(cap_mb), tonumber(margin))
        local ok, err = connect(conn, "refuses")
        hog = nil
        return tostring(ok) .. " " .. tostring(err)
      end,
    },
    refuses = {
      _OnNamespaceConnect = function(ns, msg) return nil, "refused" end,
    },
  },
}
