-- luacheck configuration (Debian's lua-check; `luacheck .`, run by ctest as lint/luacheck).
--
-- The standard "neffos_app" is what app code may use: the globals of the sandbox an app runs in
-- (scripts/luacheck/neffos_app.lua, installed for apps outside this repository). The neffos API
-- itself comes from `require "neffos"`; its fields and methods are annotated for LuaLS in
-- scripts/meta/neffos.lua (spec/lua/meta_spec.lua keeps that file complete).
stds.neffos_app = dofile("scripts/luacheck/neffos_app.lua")

std = "neffos_app"
max_line_length = 160
unused_args = false   -- a handler is function(ns, msg) whether it reads both or not

-- Apps: the examples, the starter kit and every app of the test suites.
-- The host's own Lua (the loader, with io and debug) and the busted specs run outside the sandbox.
files["scripts/neffos.lua"] = { std = "lua54" }
files["scripts/neffos/*.lua"] = { std = "lua54" }   -- the library: the host side, not app code
files["scripts/meta/neffos.lua"] = { std = "lua54", ignore = { "212", "241" } }   -- stubs: unused arguments, tables only declared
files["spec/lua/*_spec.lua"] = { std = "lua54+busted" }

exclude_files = {
  "build/**", "build-*/**", "node_modules/**", ".git/**", ".ci/node/**",
  "spec/lua/fixtures/syntax/**",   -- a syntax error on purpose (neffos --check reports it)
}
