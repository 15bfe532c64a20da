-- The luacheck standard of neffos apps: the globals of the sandbox an app runs in
-- (docs/lua-api.md, "Sandbox"). A handler that reaches for io, debug, package, dofile,
-- loadfile, os.execute... is flagged in the editor and in CI instead of failing at run time.
-- Installed in share/neffos/luacheck/; an app's .luacheckrc uses it with
--   stds.neffos_app = dofile("/usr/share/neffos/luacheck/neffos_app.lua")
--   std = "neffos_app"
-- The neffos API itself comes from require "neffos" (a local, which luacheck does not follow):
-- its fields and methods are annotated for LuaLS in share/neffos/meta/neffos.lua.
return {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen", "rawset",
    "select", "setmetatable", "getmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION",
    "print", "load", "collectgarbage", "require", "_G",
    "string", "table", "math", "utf8", "coroutine",
    os = { fields = { "time", "date", "clock", "difftime", "getenv" } },
  },
}
