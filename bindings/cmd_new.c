/* cmd_new.c - `neffos new DIR`: a starter app (app.lua, its spec, a
 * .luacheckrc, a README). The templates and the writing are Lua
 * (scripts/neffos/new.lua); this runs them in a plain state. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

#include "nf_cmds.h"

int nf_cmd_new(int argc, char **argv, const char *scripts_dir)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(argc == 2 ? stdout : stderr, "usage: neffos new DIR\n"
                "  writes a starter app into DIR: app.lua, spec/app_spec.lua, .luacheckrc, README.md\n");
        return argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
    }
    lua_State *L = luaL_newstate();
    if (!L)
        return 1;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua", scripts_dir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    int rc = 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "neffos.new");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "neffos new: %s\n", lua_tostring(L, -1));
        rc = 1;
    } else {
        lua_pushstring(L, argv[1]);
        lua_pushstring(L, scripts_dir);   /* the annotations and the luacheck standard are beside it */
        if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
            fprintf(stderr, "neffos new: %s\n", lua_tostring(L, -1));
            rc = 1;
        } else if (lua_isnil(L, -2)) {
            fprintf(stderr, "neffos new: %s\n", lua_tostring(L, -1));
            rc = 1;
        } else {
            fputs(lua_tostring(L, -2), stdout);
        }
    }
    lua_close(L);
    return rc;
}
