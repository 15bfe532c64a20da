-- A module required by app.lua: the stress test edits it once.
return { version = 0 }
