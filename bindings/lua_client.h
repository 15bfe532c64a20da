/* lua_client.h - the "neffos.client.raw" module (lua_client.c): the C
 * client of host/client/ for Lua, in the app's state and in the test
 * runner's (`neffos test`). */
#ifndef NF_LUA_CLIENT_H
#define NF_LUA_CLIENT_H

#include <lua.h>

struct event_base;

/* Registers package.loaded["neffos.client.raw"] in L, dialling on base.
 * In the app's state (lapp_of(L) set) waits suspend the run; in any other
 * state they run the loop until their answer or deadline. */
void lclient_open(lua_State *L, struct event_base *base);

#endif
