// Issue 3, broadcasting (docs/protocol.md §10; docs/lua-api.md server:broadcast): to a namespace, a room, one
// ID, with `except` as a conn, an ns or an ID string; whisper, shout, room-only delivery, and the
// 1,000-message bursts that must reach every receiver completely and in order (10.3: Go loses them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, RawClient, withTimeout, sleep } from './lib/server.mjs';
import { connectAs, askBody, workerOf } from './lib/parity.mjs';

const h = useServer(appPath('parity_broadcast.lua'));
const EVENTS = ['all', 'shout', 'whisper', 'roomcast', 'relay', 'n'];
// Every client knows its worker (.w): a broadcast returns the receivers on the sender's worker
// (docs/lua-api.md, "Workers"; all of them with one worker), `on(w, xs)` counts those.
const bc = async (t, name, opts = {}) => {
  const c = await connectAs(t, h.server.url(), name, { ns: 'bc', events: EVENTS, ...opts });
  c.w = await workerOf(c.ns);
  return c;
};
const many = (t, names) => Promise.all(names.map((n) => bc(t, n)));
async function rawBc(t, name) {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': name } });
  assert.equal(await r.ask('$c;bc;;_OnNamespaceConnect;0;0;'), '$c;;;;;;');
  r.w = Number((await r.ask('$w;bc;;worker;0;0;')).split(';').pop());
  return r;
}
const on = (w, xs) => String(xs.filter((x) => x.w === w).length);

test('to a namespace: every connection of it, the sender included, and nobody else (10.1)', T, async (t) => {
  const [a, b, c] = await many(t, ['ns-a', 'ns-b', 'ns-c']);
  const d = await connectAs(t, h.server.url(), 'ns-d', { ns: 'other', events: ['all'] });
  const r = await rawBc(t, 'ns-raw');
  assert.equal(await askBody(a.ns, 'all', 'hello;all'), on(a.w, [a, b, c, r]), 'the local receivers (four with one worker)');
  for (const x of [a, b, c]) {
    await x.rec.count('all', 1);
    assert.deepEqual(x.rec.of('all').map((s) => [s.ns, s.room, s.body]), [['bc', '', 'hello;all']]);
  }
  assert.equal(await r.nextText(5000, 'the broadcast'), ';bc;;all;0;0;hello;all', 'the exact bytes of a plain emit (10.2)');
  await sleep(150);
  assert.deepEqual(d.rec.of('all'), [], 'another namespace hears nothing');
  assert.equal(await askBody(d.ns, 'all', 'x'), '1');
});

test('shout to all but the sender: except = conn, ns, ID string, and ns:broadcast { except = ns }', T, async (t) => {
  const [a, b, c] = await many(t, ['sh-a', 'sh-b', 'sh-c']);
  const others = on(a.w, [b, c]);   // '2' with one worker
  assert.equal(await askBody(a.ns, 'shout_conn', '1'), others);
  assert.equal(await askBody(a.ns, 'shout_ns', '2'), others);
  assert.equal(await askBody(a.ns, 'shout_id', '3'), others);
  a.ns.emit('shout_others', '4');
  // b's shout after a's has arrived: sent at once, the two are concurrent, and with --workers N
  // (a and b on two loops) c may get either first.
  await c.rec.count('shout', 4);
  b.ns.emit('shout_others', '5');
  await b.rec.count('shout', 4);
  await c.rec.count('shout', 5);
  await a.rec.count('shout', 1);
  await sleep(150);
  assert.deepEqual(b.rec.bodies('shout'), ['sh-a: 1', 'sh-a: 2', 'sh-a: 3', 'sh-a: 4']);
  assert.deepEqual(c.rec.bodies('shout'), ['sh-a: 1', 'sh-a: 2', 'sh-a: 3', 'sh-a: 4', 'sh-b: 5']);
  assert.deepEqual(a.rec.bodies('shout'), ['sh-b: 5'], 'never back to the sender');
});

test('whisper to one ID (`to`): only that connection; an unknown ID reaches nobody', T, async (t) => {
  const [a, b, c] = await many(t, ['wh-a', 'wh-b', 'wh-c']);
  const r = await rawBc(t, 'wh-raw');
  assert.equal(await askBody(a.ns, 'whisper', 'wh-b|psst'), on(a.w, [b]));   // '1' with one worker
  assert.equal(await askBody(a.ns, 'whisper', 'wh-raw|psst;raw'), on(a.w, [r]));
  assert.equal(await askBody(a.ns, 'whisper', 'nobody|lost'), '0');
  assert.equal(await askBody(a.ns, 'to_and_except', 'wh-c'), '0', '`to` and `except` the same ID: nobody');
  await b.rec.count('whisper', 1);
  assert.deepEqual(b.rec.bodies('whisper'), ['wh-a: psst']);
  assert.equal(await r.nextText(5000, 'whisper'), ';bc;;whisper;0;0;wh-a: psst;raw');
  await sleep(150);
  assert.deepEqual(a.rec.of('whisper'), []);
  assert.deepEqual(c.rec.of('whisper'), []);
  await r.expectNothing(100);
});

test('to a room: only its members, text or binary', T, async (t) => {
  const [a, b, c] = await many(t, ['rm-a', 'rm-b', 'rm-c']);
  const r = await rawBc(t, 'rm-raw');
  await withTimeout(a.ns.joinRoom('green'), 5000, 'join');
  await withTimeout(b.ns.joinRoom('green'), 5000, 'join');
  await withTimeout(c.ns.joinRoom('grey'), 5000, 'join');
  assert.equal(await r.ask('$j;bc;green;_OnRoomJoin;0;0;'), '$j;;;;;;');
  assert.equal(await askBody(c.ns, 'roomcast', 'green|for green'), on(c.w, [a, b, r]), 'a non-member may broadcast into a room');
  await a.rec.count('roomcast', 1);
  await b.rec.count('roomcast', 1);
  assert.deepEqual(a.rec.of('roomcast').map((s) => [s.room, s.body]), [['green', 'for green']]);
  assert.equal(await r.nextText(5000, 'roomcast'), ';bc;green;roomcast;0;0;for green');
  // binary: the request came as a binary frame, the broadcast goes out as one
  r.sendBinary(Buffer.from('$b;bc;;roomcast;0;0;green|\x00\xff;', 'latin1'));
  const frames = [await r.next(5000, 'binary frame 1'), await r.next(5000, 'binary frame 2')];
  const cast = frames.find((f) => f.data[0] === 0x3b);
  const reply = frames.find((f) => f.data[0] === 0x24);
  assert.ok(cast && reply, 'the broadcast and the reply');
  assert.equal(cast.binary, true, 'a binary broadcast is a binary frame');
  assert.deepEqual(cast.data, Buffer.from(';bc;green;roomcast;0;0;\x00\xff;', 'latin1'));
  assert.equal(reply.binary, true);
  assert.equal(reply.data.toString(), `$b;bc;;roomcast;0;0;${on(r.w, [a, b, r])}`);
  await b.rec.count('roomcast', 2);
  const got = b.rec.of('roomcast')[1];
  assert.equal(got.binary, true, 'neffos.js gets an ArrayBuffer');
  assert.deepEqual(Buffer.from(got.body, 'latin1'), Buffer.from('\x00\xff;', 'latin1'));
  await sleep(150);
  assert.deepEqual(c.rec.of('roomcast'), [], 'the grey room hears nothing');
});

test('a burst of 1,000 broadcasts from one handler reaches every receiver completely and in order', { timeout: 60_000 }, async (t) => {
  const names = ['bu-a', 'bu-b', 'bu-c', 'bu-d', 'bu-e'];
  const clients = await many(t, names);
  await Promise.all(clients.map((c) => withTimeout(c.ns.joinRoom('burst'), 5000, 'join burst')));
  const r = await rawBc(t, 'bu-raw');
  assert.equal(await r.ask('$j;bc;burst;_OnRoomJoin;0;0;'), '$j;;;;;;');
  const N = 1000;
  assert.equal(await askBody(clients[0].ns, 'burst', `burst|${N}`, 30_000), String(N * Number(on(clients[0].w, [...clients, r]))));
  const want = Array.from({ length: N }, (_, i) => String(i + 1));
  for (const c of clients) {
    await c.rec.count('n', N, 30_000);
    assert.deepEqual(c.rec.bodies('n'), want, 'all 1,000, in order, nothing more');
  }
  for (let i = 1; i <= N; i++) {
    const f = await r.nextText(5000, `burst message ${i}`);
    if (f !== `;bc;burst;n;0;0;${i}`) assert.fail(`raw receiver: message ${i} is ${JSON.stringify(f)}`);
  }
  await sleep(150);
  for (const c of clients) assert.equal(c.rec.of('n').length, N);
});

test('1,000 client emits relayed to all but the sender: every receiver gets all, in order', { timeout: 60_000 }, async (t) => {
  const [sender, ...receivers] = await many(t, ['re-s', 're-a', 're-b', 're-c', 're-d']);
  const N = 1000;
  for (let i = 1; i <= N; i++) assert.equal(sender.ns.emit('relay', String(i)), true);
  const want = Array.from({ length: N }, (_, i) => String(i + 1));
  for (const c of receivers) {
    await c.rec.count('relay', N, 30_000);
    assert.deepEqual(c.rec.bodies('relay'), want);
  }
  await sleep(150);
  assert.deepEqual(sender.rec.of('relay'), []);
});
