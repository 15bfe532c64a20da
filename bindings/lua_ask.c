/* lua_ask.c - the end of every Lua ask (ns:ask, room:ask, server:ask): the
 * answer resumes the handler that waits for it. */
#include "lua_internal.h"

/* The nf_ask_cb of every Lua ask (ns:ask, room:ask, server:ask): resumes the
 * waiting handler with the answer msg, or nil, err. ud is its lwait. */
void lask_done(void *ud, nf_ask_status st, const nf_msg *reply)
{
    lwait *w = ud;
    lrun *r = w->r;
    lua_State *T = lrun_result_state(r);
    int n;
    if (st == NF_ASK_OK) {
        lmsg_push_served(T, reply, reply->binary ? NF_INV_BINARY : 0, w->c ? nf_conn_endpoint(w->c) : NULL, 0);
        n = 1;
    } else {
        n = lmsg_push_ask_failure(T, st, reply);
    }
    lwait_free(w);
    lrun_deliver(r, n);
}
