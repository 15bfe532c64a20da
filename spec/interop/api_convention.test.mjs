// The Lua API convention (docs/lua-api.md, "Conventions"; issue 13 point 9): nil, err for every
// call that can fail (a truthy value on success), options as tables with a binary option
// wherever a body is sent, room:broadcast, listings as lists of objects, no conn.remote_addr.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, RawClient } from './lib/server.mjs';
import { connectAs, askBody, workerOf, connectOnWorker } from './lib/parity.mjs';

const h = useServer(appPath('api_convention.lua'));
const EVENTS = ['hello', 'rb', 'nb', 'eb', 'wrote'];
const api = (t, name) => connectAs(t, h.server.url(), name, { ns: 'api', events: EVENTS });

test('one convention: errors as nil, err; options as tables; lists of objects', T, async (t) => {
  const a = await api(t, 'conv-a');
  const r = JSON.parse(await askBody(a.ns, 'report'));
  assert.deepEqual(r.decode_bad, [true, 'string'], 'neffos.json.decode returns nil, err on bad JSON');
  assert.deepEqual(r.encode_bad, [true, 'string'], 'neffos.json.encode returns nil, err');
  assert.equal(r.decode_good, 2);
  assert.deepEqual(r.remote_addr, [true, 'string'], 'conn.remote_addr is gone, conn.request.remote_addr stays');
  assert.equal(r.emit, true, 'ns:emit returns true');
  assert.match(r.ask_number, /ns:ask: options must be a table \(got number\); a timeout is \{ timeout = seconds \}/);
  assert.match(r.unknown_option, /ns:emit: unknown option binray \(known: binary\)/);
  assert.match(r.broadcast_table, /ns:broadcast: options must be a table \(got string\)/);
  assert.match(r.server_unknown, /server:broadcast: unknown option ecxept/);
  assert.deepEqual(r.connections, ['table', 'conn('], 'server:connections() is a list of conn');
  assert.equal(r.members_are_ns, true, 'server:members() lists ns objects');
  assert.equal(r.namespaces, 'ns(api)');
  await a.rec.count('hello', 1);
});

test('a kept ns or conn whose connection is gone answers nil, "write closed" (close: true)', T, async (t) => {
  const a = await api(t, 'conv-gone');
  // "keep" answers the worker holding the kept ns (module locals are per worker): "stale" is
  // asked from a connection of that worker
  const w = Number(await askBody(a.ns, 'keep', 'gone'));
  a.conn.close();
  const b = await connectOnWorker((i) => api(t, `conv-b${i}`), w);   // "stale" waits until the server freed conv-gone
  const r = JSON.parse(await askBody(b.ns, 'stale', 'gone'));
  const closed = ['nil', 'write closed'];
  assert.deepEqual(r, { gone: true, emit: closed, ask: closed, broadcast: closed, write: closed,
    leave_all: ['true', 'nil'], disconnect: ['true', 'nil'], close: ['true', 'nil'] });
});

test('room:broadcast and ns:broadcast { room } reach the room, binary when asked', T, async (t) => {
  const a = await api(t, 'rb-a');
  const b = await api(t, 'rb-b');
  const c = await api(t, 'rb-c');   // in the namespace, not in the room
  await a.ns.joinRoom('r');
  await b.ns.joinRoom('r');
  a.ns.room('r').emit('room_bc', 'to the others');
  const got = await b.rec.count('rb', 1);
  assert.deepEqual(got.map((s) => [s.room, s.body, s.binary]), [['r', 'to the others', true]]);
  // ns:broadcast returns the receivers on the sender's worker (both members with one worker;
  // docs/lua-api.md "Workers")
  const aw = await workerOf(a.ns);
  const local = (await Promise.all([a, b].map((x) => workerOf(x.ns)))).filter((w) => w === aw).length;
  // Everything sent to a connection arrives in order: once "nb" (sent after "rb") is there,
  // an "rb" would have been there before it.
  assert.equal(await askBody(a.ns, 'ns_bc_room', 'r'), String(local), 'the members of r on the sender\'s worker');
  for (const x of [a, b]) {
    const nb = await x.rec.count('nb', 1);
    assert.deepEqual(nb.map((s) => [s.room, s.body, s.binary]), [['r', 'to the room', true]]);
  }
  assert.deepEqual(a.rec.of('rb'), [], 'except = ns: not to the sender');
  assert.equal(await askBody(c.ns, 'emit_binary', 'bin'), 'true', 'ns:emit returns true');
  const eb = await c.rec.count('eb', 1);
  assert.deepEqual(eb.map((s) => [s.body, s.binary]), [['bin', true]], 'ns:emit { binary = true }');
  assert.deepEqual([...c.rec.of('rb'), ...c.rec.of('nb')], [], 'not in the room: nothing');
});

test('conn:write(body, { binary }) sends raw frames and returns true', T, async (t) => {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'raw-w' } });
  assert.equal(await r.ask('$1;api;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  r.sendText(';api;;raw_write;0;0;');
  const bin = await r.next(5000, 'the binary frame');
  assert.deepEqual([bin.binary, bin.data.toString()], [true, 'raw-bin']);
  assert.equal(await r.nextText(5000, 'the text frame'), 'raw-text');
  assert.equal(await r.nextText(5000, 'the report'), ';api;;wrote;0;0;true,true');
});
