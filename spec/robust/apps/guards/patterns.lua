-- Pattern cases whose results must be exactly stock Lua 5.4's: the server runs them through its
-- metered matcher (bindings/lua_pattern.c), spec/robust/guards.test.mjs runs them with lua5.4.
return function()
  local out = {}
  local function put(...)
    local t = table.pack(...)
    for i = 1, t.n do t[i] = tostring(t[i]) end
    out[#out + 1] = table.concat(t, ",", 1, t.n)
  end
  local s = "  key = value ; x=1, y = 22 (a(b)c) [%d] hello world 3.14 \0 end"
  put(s:find("=", 1, true))
  put(s:find("%s*=%s*"))
  put(s:find("(%w+)%s*=%s*(%w+)"))
  put(s:find("()ll()"))
  put(s:find("^%s*key"))
  put(s:find("x", -20))
  put(s:find("", 100))
  put(s:find("[%d]", 1, true))
  put(s:match("^%s*(.-)%s*=%s*(.-)%s*$"))
  put(s:match("%b()"))
  put(s:match("%f[%a]%a+"))
  put(s:match("(%d+)%.(%d+)"))
  put(s:match("(h)(e)(l)%3o"))
  put(s:match("%z"))
  put(("aaa"):match("a-b"), ("aaab"):match("a-b"), ("aaab"):match("^a*"), ("ab"):match("a?b"))
  for k, v in s:gmatch("(%w+)%s*=%s*(%w+)") do put(k, v) end
  for w in ("one two  three"):gmatch("%a+") do put(w) end
  for p in ("abc"):gmatch("()") do put(p) end
  put(s:gsub("%s+", " "))
  put(s:gsub("(%w+)", "<%1>", 3))
  put(s:gsub("%w+", { key = "K", hello = false }))
  put(s:gsub("%d", function(d) return tonumber(d) + 1 end))
  put(("hello"):gsub("", "-"))
  put(("abc"):gsub("%w", "%0%0"))
  put(pcall(string.gsub, "x", "(", ""))
  put(pcall(string.find, "x", "[a"))
  put(pcall(string.gsub, "x", "x", "%2"))
  put(pcall(string.match, string.rep("a", 300), string.rep("(a)", 33)))
  return table.concat(out, "|")
end
