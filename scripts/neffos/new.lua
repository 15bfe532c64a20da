-- neffos/new.lua - `neffos new DIR`: writes a starter app (bindings/cmd_new.c
-- runs this). `neffos new demo && neffos test demo` passes as written.

local FILES = {}

FILES["app.lua"] = [=[
-- A neffos app: namespace "chat" with an event ("say", to the sender's room),
-- a room announcement (OnRoomJoined) and an ask ("ping").
--   neffos . --listen 127.0.0.1:8080     serve it (saving a file reloads it)
--   neffos test .                        run spec/*_spec.lua against it
local neffos = require "neffos"

return neffos.server {
  endpoint = "/chat",
  namespaces = {
    chat = {
      -- The client joined a room: tell the others there.
      [neffos.OnRoomJoined] = function(ns, msg)
        ns.server:broadcast { namespace = "chat", room = msg.room, event = "joined", body = ns.id, except = ns }
      end,

      -- An event: what one says in a room reaches the other members of that room.
      say = function(ns, msg)
        if msg.room == "" or not ns:room(msg.room) then
          return nil, "join a room first"
        end
        ns.server:broadcast { namespace = "chat", room = msg.room, event = "said", body = msg.body, except = ns }
      end,

      -- An ask: the return value is the answer, nil, err an error answer.
      ping = function(_, msg)
        if msg.body == "" then return nil, "empty ping" end
        return "pong: " .. msg.body
      end,
    },
  },
}
]=]

FILES["spec/app_spec.lua"] = [=[
-- Specs of app.lua: `neffos test .` starts the app on a free port and runs these.
local testing = require "neffos.testing"

describe("the chat namespace", function()
  local app
  before_each(function() app = testing.start() end)
  after_each(function() app:stop() end)

  it("answers ping", function()
    local chat = app:connect("chat")
    assert.equal("pong: hi", assert(chat:ask("ping", "hi")).body)
    local _, err = chat:ask("ping", "")
    assert.equal("empty ping", err)
  end)

  it("says to the others in the room", function()
    local alice, bob = app:connect("chat"), app:connect("chat")
    local lobby = assert(alice:join_room("lobby"))
    assert(bob:join_room("lobby"))
    assert.equal(bob.id, assert(alice:wait("joined")).body)

    lobby:emit("say", "hello")
    local msg = assert(bob:wait("said"))
    assert.equal("lobby", msg.room)
    assert.equal("hello", msg.body)
  end)
end)
]=]

-- The luacheck standard of neffos apps (the sandbox's globals); its path is filled in below.
FILES[".luacheckrc"] = [=[
-- luacheck . (Debian: apt install lua-check). The app runs in neffos's sandbox: the standard
-- below flags io, os.execute, debug... before the server refuses them.
stds.neffos_app = dofile("%s")
std = "neffos_app"
max_line_length = 120
files["spec"] = { std = "lua54+busted" }   -- specs run in neffos test's plain Lua state
]=]

-- The LuaLS annotations of the API (completion, hover docs, nil, err checks); the path is filled in below.
FILES[".luarc.json"] = [=[
{
  "runtime.version": "Lua 5.4",
  "workspace.library": ["%s"],
  "diagnostics.globals": ["describe", "it", "before_each", "after_each", "setup", "teardown", "assert", "spy", "stub", "mock"]
}
]=]

FILES["README.md"] = [=[
# %s

A [neffos](https://github.com/kataras/neffos) app with handlers in Lua: `app.lua`, its specs in `spec/`.

    neffos %s --listen 127.0.0.1:8080    # serve it on ws://127.0.0.1:8080/chat; saving a file reloads it
    neffos test %s                       # run spec/*_spec.lua against it (busted)

A browser or Node client: `neffos.js`, `neffos.dial("ws://127.0.0.1:8080/chat", { chat: {...} })`.
The API: docs/lua-api.md of neffos for C and Lua (installed in /usr/share/doc/neffos/).
]=]

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function is_empty_or_absent(dir)
  local p = io.popen("ls -A " .. shell_quote(dir) .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return out == ""
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- scripts_dir: where neffos.lua is (share/neffos/lua installed, scripts/ in a source tree); the
-- annotations and the luacheck standard are beside it.
return function(dir, scripts_dir)
  if dir == "" then return nil, "want a directory name" end
  local base = (scripts_dir or "/usr/share/neffos/lua"):gsub("/lua/?$", "")
  local std = base .. "/luacheck/neffos_app.lua"
  local meta = base .. "/meta"
  if not file_exists(std) or not file_exists(meta .. "/neffos.lua") then
    return nil, "the luacheck standard or the annotations are missing beside " .. tostring(scripts_dir)
  end
  if not is_empty_or_absent(dir) then
    return nil, dir .. " exists and is not empty: choose a new directory"
  end
  local ok = os.execute("mkdir -p " .. shell_quote(dir .. "/spec"))
  if not ok then return nil, "cannot create " .. dir end
  local name = dir:gsub("/+$", ""):match("[^/]+$") or dir
  local names = {}
  for file in pairs(FILES) do names[#names + 1] = file end
  table.sort(names)
  for _, file in ipairs(names) do
    local text = FILES[file]
    if file == "README.md" then text = text:format(name, dir, dir) end
    if file == ".luacheckrc" then text = text:format(std) end
    if file == ".luarc.json" then text = text:format(meta) end
    local f, err = io.open(dir .. "/" .. file, "wb")
    if not f then return nil, err end
    f:write(text)
    f:close()
  end
  return ("wrote %s: %s\nrun it:  neffos %s --listen 127.0.0.1:8080\ntest it: neffos test %s\n")
    :format(dir, table.concat(names, ", "), dir, dir)
end
