// Connection IDs across processes (docs/protocol.md §17.2.5, 14.3, 14.4; issue 12 points 1-2): an ID with
// white space, '.', '*', '>' and unicode (encoded into one NATS subject token, as it is in a
// Redis channel name) is addressed from another process, and duplicate IDs living on two
// processes are all reached by "to", all skipped by "except = ID", and asked once by server:ask.
// Two neffos processes per broker, real redis-server and nats-server started here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCluster, sleep, eventually, withTimeout, neffos } from './lib/cluster.mjs';
import { dial } from '../interop/lib/server.mjs';

const T = { timeout: 60_000 };
const QUIET_MS = 400;

for (const kind of ['nats', 'redis']) {
  const c = useCluster(kind, 2);
  let seq = 0;
  const uniq = (what) => `${what}-${++seq}`;

  /** A neffos.js client with connection ID `id` (any bytes: sent as an X-Websocket-Header-
   *  query parameter, URL-encoded) on `node`, connected to "default"; records what it gets. */
  async function client(t, node, id, answer = `${id} says hi`) {
    const got = [];
    const record = (ev) => (nsc, msg) => { got.push(`${ev} ${msg.Room || '-'} ${msg.Body}`); };
    const url = `${node.url()}?X-Websocket-Header-X-Username=${encodeURIComponent(id)}`;
    const conn = await dial(t, url, {
      default: {
        news: record('news'),
        direct: record('direct'),
        question: () => neffos.reply(answer),
      },
    });
    assert.equal(conn.ID, id, 'the ID as the app gave it');
    const ns = await withTimeout(conn.connect('default'), 5000, `${id} connects`);
    return {
      id, conn, ns, got,
      saw: (line) => eventually(() => got.includes(line), `${id} receives ${JSON.stringify(line)}; got ${JSON.stringify(got.slice(-5))}`, 5000, 20),
      has: (line) => got.includes(line),
    };
  }
  const ask = async (x, body) => (await withTimeout(x.ns.ask('ask_other', JSON.stringify(body)), 10_000, 'ask_other')).Body;

  test(`${kind}: an ID with spaces, dots, wildcards and unicode is addressed from another process`, T, async (t) => {
    await c.ready;
    const [n0, n1] = c.nodes;
    const odd = uniq('bob smith.*>.ü > * .');
    const b = await client(t, n1, odd);
    const a = await client(t, n0, uniq('alice@example.com'));
    const other = await client(t, n1, uniq('bob'));   // a prefix-alike on the same process
    const body = uniq('direct');
    a.ns.emit('direct', JSON.stringify({ to: odd, text: body }));
    await b.saw(`direct - ${body}`);
    assert.equal(await ask(a, { to: odd }), `answer: ${odd} says hi`);
    // except = that ID, from the other process.
    const body2 = uniq('except');
    a.ns.emit('except_id', JSON.stringify({ except: odd, text: body2 }));
    await other.saw(`news - ${body2}`);
    await a.saw(`news - ${body2}`);
    await sleep(QUIET_MS);
    assert.equal(b.has(`news - ${body2}`), false, 'the excluded ID got the broadcast');
    assert.equal(other.has(`direct - ${body}`) || a.has(`direct - ${body}`), false, 'somebody else got the direct message');
    c.nodes.forEach((n) => n.assertAlive());
  });

  for (const name of ['carol', 'carol @ two tabs.'])
  test(`${kind}: one ID (${JSON.stringify(name)}) on two processes: "to" reaches both, "except" skips both, server:ask gets the first answer`, T, async (t) => {
    await c.ready;
    const [n0, n1] = c.nodes;
    const id = uniq(name);
    const c0 = await client(t, n0, id, 'tab on node 0');
    const c1 = await client(t, n1, id, 'tab on node 1');
    const asker = await client(t, n1, uniq('asker'));
    const body = uniq('to both');
    asker.ns.emit('direct', JSON.stringify({ to: id, text: body }));
    await c0.saw(`direct - ${body}`);
    await c1.saw(`direct - ${body}`);
    const body2 = uniq('not to carol');
    asker.ns.emit('except_id', JSON.stringify({ except: id, text: body2 }));
    await asker.saw(`news - ${body2}`);
    await sleep(QUIET_MS);
    assert.equal(c0.has(`news - ${body2}`) || c1.has(`news - ${body2}`), false, 'a connection with the excluded ID got it');
    // except = the connection (broadcast_others): the same ID on the other process is not excluded.
    const body3 = uniq('others');
    c0.ns.emit('others', body3);
    await c1.saw(`news - ${body3}`);
    await asker.saw(`news - ${body3}`);
    await sleep(QUIET_MS);
    assert.equal(c0.has(`news - ${body3}`), false, 'the sender got its own broadcast { except = ns }');
    // server:ask: both tabs are asked, the first answer wins (the local one, here on node 1).
    assert.match(await ask(asker, { to: id }), /^answer: tab on node [01]$/);
    const fromNode0 = await client(t, n0, uniq('asker0'));
    assert.match(await ask(fromNode0, { to: id }), /^answer: tab on node [01]$/);
    // Only the remote tab is left: its answer comes over the broker.
    c1.conn.close();
    await sleep(200);
    assert.equal(await ask(asker, { to: id }), 'answer: tab on node 0');
    c.nodes.forEach((n) => n.assertAlive());
  });
}
