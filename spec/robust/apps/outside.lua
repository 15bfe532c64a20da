-- Not an app: a Lua file outside spec/robust/apps/guards/ that the guards app must not be
-- able to load (spec/robust/guards.test.mjs, "the loader escape").
return require("neffos").server { endpoint = "/outside", namespaces = { o = {} } }
