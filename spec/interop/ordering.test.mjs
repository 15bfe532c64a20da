// The connection's turn and the frames around a connect or a join (issue 12 points 3-5, issue 13
// point 4, docs/architecture.md "Ordering" and "Frames after a reply"): real neffos.js under Node
// with ws's default options, and a raw client that writes in the Go client's order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, startServer, dial, RawClient, withTimeout } from './lib/server.mjs';

const h = useServer(appPath('ordering.lua'));
let seq = 0;
const user = (what) => `${what}-${process.pid}-${++seq}`;
const withUser = (name, headers = {}) => ({ headers: { 'X-Username': name, ...headers } });

// 12.4: OnNamespaceConnected / OnRoomJoined wait (neffos.sleep) before they set the state the
// next event reads; the ask sent right after connect() / joinRoom() must see that state.
test('an ask right after connect() waits for a waiting OnNamespaceConnected; after joinRoom() for OnRoomJoined', T, async (t) => {
  const conn = await dial(t, h.server.url(), { slow: {} }, withUser(user('slow')));
  const ns = await withTimeout(conn.connect('slow'), 5000, 'connect');
  assert.equal((await withTimeout(ns.ask('state', ''), 5000, 'ask state')).Body, 'connected nil');
  await withTimeout(ns.joinRoom('r1'), 5000, 'joinRoom');
  assert.equal((await withTimeout(ns.ask('state', ''), 5000, 'ask state')).Body, 'connected r1');
});

// 12.3: what OnNamespaceConnected sends reaches neffos.js (ws >= 8.17 delivers the frames of one
// TCP read synchronously, neffos.js registers the namespace in a promise continuation): 30 dials
// at once, default options, while other clients keep asking. Every one gets the welcome emit, and
// the forced join from OnNamespaceConnected completes on both sides.
test('30 dials at once under load: every welcome emit arrives and every forced join completes', T, async (t) => {
  let asking = true;
  const load = [];
  for (let i = 0; i < 4; i++) {
    const c = await dial(t, h.server.url(), { chat: {}, welcome: {} }, withUser(user('load')));
    const ns = await withTimeout(c.connect('welcome'), 5000, 'load connect');
    load.push((async () => {
      let n = 0;
      while (asking && n < 2000) {
        assert.equal((await withTimeout(ns.ask('echo', `x${n}`), 5000, 'load ask')).Body, `x${n}`);
        n++;
      }
      return n;
    })());
  }
  const N = 30;
  const one = async (i) => {
    const got = {};
    const arrived = {};
    for (const ev of ['welcome', 'joined', '_OnRoomJoined']) {
      arrived[ev] = new Promise((resolve) => { got[ev] = resolve; });
    }
    const handlers = { welcome: {
      welcome: (ns, msg) => got.welcome(msg.Body),
      joined: (ns, msg) => got.joined(msg.Body),
      _OnRoomJoined: (ns, msg) => got._OnRoomJoined(msg.Room),
    } };
    const name = user(`dial${i}`);
    const conn = await dial(t, h.server.url(), handlers, withUser(name), 10_000);
    await withTimeout(conn.connect('welcome'), 10_000, `connect ${i}`);
    return {
      welcome: await withTimeout(arrived.welcome, 10_000, `welcome ${i}`) === `welcome ${name}`,
      joinedClient: await withTimeout(arrived._OnRoomJoined, 10_000, `client OnRoomJoined ${i}`) === 'lobby',
      joinedServer: await withTimeout(arrived.joined, 10_000, `server join_room ${i}`) === 'lobby',
    };
  };
  const results = await Promise.all(Array.from({ length: N }, (_, i) => one(i)));
  asking = false;
  const asked = await Promise.all(load);
  assert.ok(asked.every((n) => n > 0), `load clients asked: ${asked}`);
  assert.equal(results.filter((r) => r.welcome).length, N, 'welcome emits received');
  assert.equal(results.filter((r) => r.joinedClient).length, N, 'forced joins seen by the client');
  assert.equal(results.filter((r) => r.joinedServer).length, N, 'forced joins completed on the server');
});

// 12.5: the Go client marks a server-forced namespace connected before it writes its answer, so
// its first ask reaches the server before that answer. The server holds it until the connect is
// answered, then handles it; if the connect fails it answers "bad namespace".
async function goClientOrder(t, answerOk) {
  const r = await RawClient.open(t, h.server.url(), withUser(user('go'), { 'X-Force': '1' }));
  const ack = await r.handshake();
  assert.ok(ack.startsWith('A'), ack);
  const req = await r.nextText(5000, 'the forced connect');
  const m = /^(\d+);chat;;_OnNamespaceConnect;0;0;$/.exec(req);
  assert.ok(m, `forced connect request ${JSON.stringify(req)}`);
  r.sendText('$1;chat;;echo;0;0;x');
  r.sendText(answerOk ? `${m[1]};;;;;;` : `${m[1]};chat;;_OnNamespaceConnect;1;0;no thanks`);
  return r.nextText(5000, 'the ask reply');
}

test("raw, Go client's order: an ask written before the forced connect's answer is held for it", T, async (t) => {
  assert.equal(await goClientOrder(t, true), '$1;chat;;echo;0;0;echo: x', 'answered: handled');
  assert.equal(await goClientOrder(t, false), '$1;chat;;echo;1;0;bad namespace', 'refused: bad namespace');
});

// 13.4: a forced action asked from another connection's handler is one of this connection's
// handler runs too: its OnRoomJoined waits until the handler that holds the turn has finished.
test('a forced join asked by another connection waits for the turn: OnRoomJoined after the waiting handler', T, async (t) => {
  const name = user('target');
  let started;
  const startedP = new Promise((resolve) => { started = resolve; });
  const a = await dial(t, h.server.url(), { outside: { started: () => started() } }, withUser(name));
  const nsA = await withTimeout(a.connect('outside'), 5000, 'connect a');
  const b = await dial(t, h.server.url(), { outside: {} }, withUser(user('other')));
  const nsB = await withTimeout(b.connect('outside'), 5000, 'connect b');
  const slow = nsA.ask('slow', '');
  await withTimeout(startedP, 5000, 'slow started');
  const forced = nsB.ask('force_join', name);
  assert.equal((await withTimeout(slow, 10_000, 'slow')).Body, 'slow done');
  assert.equal((await withTimeout(forced, 10_000, 'force_join')).Body, 'joined');
  const notes = (await withTimeout(nsB.ask('notes', name), 5000, 'notes')).Body;
  assert.equal(notes, 'slow start,slow end,joined r');
});

// The turn's safety valve: two handlers that force a join on each other's connection each hold
// their own turn while waiting for the other's; neither forced action can start. A forced action
// gives up after waiting --ask-timeout-ms for the turn ("timeout"), which ends its handler's turn,
// so the other one may then go through: never both stuck, both connections go on.
test('forced actions asked of each other: one gives up after --ask-timeout-ms ("timeout"), neither waits forever', T, async (t) => {
  const s = await startServer(appPath('ordering.lua'), { args: ['--no-watch', '--ask-timeout-ms', '1000'] });
  t.after(() => s.stop());
  const [na, nb] = [user('cross-a'), user('cross-b')];
  const a = await dial(t, s.url(), { outside: {} }, withUser(na));
  const b = await dial(t, s.url(), { outside: {} }, withUser(nb));
  const nsA = await withTimeout(a.connect('outside'), 5000, 'connect a');
  const nsB = await withTimeout(b.connect('outside'), 5000, 'connect b');
  const results = await withTimeout(Promise.all([nsA.ask('force_join_late', nb), nsB.ask('force_join_late', na)]),
    10_000, 'both forced joins settle');
  const bodies = results.map((m) => m.Body);
  assert.ok(bodies.includes('timeout'), `one gave up waiting for the turn: ${bodies}`);
  assert.ok(bodies.every((b) => b === 'timeout' || b === 'joined'), `${bodies}`);
  for (const [ns, who] of [[nsA, na], [nsB, nb]]) {
    const notes = (await withTimeout(ns.ask('notes', who), 5000, `${who} still served`)).Body;
    assert.ok(notes === '' || notes === 'joined r', notes);
  }
});
