-- A log of the test apps that holds for the whole process: `require "shared_log" (name)`.
-- With --workers N each worker has its own Lua state (module locals, neffos.state are per
-- worker), so the events an app notes and the request that reads the notes back may run on
-- different workers (docs/lua-api.md, "Workers"). The lines live in neffos.shared, one key each
-- ("<name>:<n>"), numbered by an incr'd counter: one order over every worker. Only the newest
-- `keep` lines are kept (the dictionary is bounded). With one worker it is the same dictionary.
local neffos = require "neffos"

return function(name, keep)
  keep = keep or 500
  local d = neffos.shared
  local log = {}

  -- Appends a line; returns its number (1, 2, ...).
  function log.add(line)
    local n = d:incr(name .. ":n", 1, 0)
    d:set(name .. ":" .. n, line)
    if n > keep then d:delete(name .. ":" .. (n - keep)) end
    return n
  end

  -- The lines kept, oldest first (a line whose number is taken but not yet set is left out).
  function log.list()
    local out = {}
    local n = d:get(name .. ":n") or 0
    for i = math.max(1, n - keep + 1), n do
      local line = d:get(name .. ":" .. i)
      if line ~= nil then out[#out + 1] = line end
    end
    return out
  end

  -- Forgets every line.
  function log.clear()
    local n = d:get(name .. ":n") or 0
    for i = math.max(1, n - keep + 1), n do d:delete(name .. ":" .. i) end
    d:set(name .. ":n", 0)
  end

  return log
end
