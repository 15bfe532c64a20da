-- The neffos Request-Response app: namespace "default", event "workday" with a body "mm-dd-yyyy".
-- A weekday is answered "it's Monday, do your job." (that day's name); a Saturday or a Sunday
-- gets the error "day off"; a date that is not valid gets an error that says why.
--   neffos examples/workday --listen 127.0.0.1:8080
--   node examples/workday/client.mjs ws://127.0.0.1:8080/echo
local neffos = require "neffos"

local names = { [0] = "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday" }

local function leap(y)
  return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
end

local function days_in(m, y)
  if m == 2 then return leap(y) and 29 or 28 end
  return (m == 4 or m == 6 or m == 9 or m == 11) and 30 or 31
end

-- 0 = Sunday ... 6 = Saturday, proleptic Gregorian calendar (Sakamoto's method).
local function weekday(y, m, d)
  local t = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 }
  if m < 3 then y = y - 1 end
  return (y + y // 4 - y // 100 + y // 400 + t[m] + d) % 7
end

-- "mm-dd-yyyy" -> year, month, day; or nil and the reason.
local function parse(s)
  local m, d, y = s:match("^(%d%d)%-(%d%d)%-(%d%d%d%d)$")
  if not m then
    return nil, ("parsing time %q: want mm-dd-yyyy"):format(s)
  end
  m, d, y = tonumber(m), tonumber(d), tonumber(y)
  if m < 1 or m > 12 then
    return nil, ("parsing time %q: month out of range"):format(s)
  end
  if d < 1 or d > days_in(m, y) then
    return nil, ("parsing time %q: day out of range"):format(s)
  end
  return y, m, d
end

return neffos.server {
  endpoint = "/echo",
  namespaces = {
    default = {
      workday = function(ns, msg)
        local y, m, d = parse(msg.body)
        if not y then
          return nil, m
        end
        local wd = weekday(y, m, d)
        if wd == 0 or wd == 6 then
          return nil, "day off"
        end
        return ("it's %s, do your job."):format(names[wd])
      end,
    },
  },
}
