// The seeds' API extras against the real neffos.js (docs/lua-api.md "Controllers",
// "Tables as bodies", on_upgrade_error, conn.was_reconnected): Go's NewStruct with
// per-connection instances and event matchers, Marshal / Message.Unmarshal with the JSON
// codec and a binary one, OnUpgradeError for every refusal of a request that reached the
// server, and WasReconnected across a server restart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  T, appPath, startServer, useServer, dial, withTimeout, eventually, RawClient, rawHttp, freePort,
} from './lib/server.mjs';

const APP = appPath('api_extras.lua');
const h = useServer(APP, { args: ['--no-watch', '--allowed-origins', 'http://good.example', '--handshake-timeout-ms', '2000'] });

/** neffos.js connected to `ns`; `got` collects [event, body] of what the server sends. */
async function connect(t, ns, { path = '/echo', headers, events = [] } = {}) {
  const got = [];
  const handlers = {};
  for (const e of events) handlers[e] = (c, msg) => { got.push([e, msg.Body]); };
  const conn = await dial(t, h.server.url(path), { [ns]: handlers }, headers ? { headers } : undefined);
  const nsc = await withTimeout(conn.connect(ns), 5000, `connect ${ns}`);
  return { conn, nsc, got };
}

async function refusals(t) {
  const { nsc } = await connect(t, 'status');
  const m = await withTimeout(nsc.ask('refusals', ''), 5000, 'ask refusals');
  return m.Body ? m.Body.split('\n') : [];
}

test('controller: on_* methods are events, each namespace connection has its own self', T, async (t) => {
  const a = await connect(t, 'chat', { headers: { 'X-User': 'ann' }, events: ['welcome'] });
  const b = await connect(t, 'chat', { headers: { 'X-User': 'bob' }, events: ['welcome'] });
  // OnNamespaceConnected is the system event: it ran with the instance new() made.
  await eventually(() => a.got.length === 1 && b.got.length === 1, 'both welcomed');
  assert.deepEqual(a.got, [['welcome', 'hi ann']]);
  assert.deepEqual(b.got, [['welcome', 'hi bob']]);
  assert.equal((await a.nsc.ask('say', 'one')).Body, 'ann#1: one');
  assert.equal((await a.nsc.ask('say', 'two')).Body, 'ann#2: two');
  assert.equal((await b.nsc.ask('say', 'one')).Body, 'bob#1: one');   // bob's own counter
  // Neither the method name nor a plain method is an event (no handler: no answer).
  const noAnswer = (ev) => withTimeout(a.nsc.ask(ev, ''), 300, ev).then(() => 'answered', () => 'none');
  assert.equal(await noAnswer('on_say'), 'none');
  assert.equal(await noAnswer('tag'), 'none');
  // A disconnect drops the instance; the next connect gets a fresh one.
  await a.nsc.disconnect();
  const again = await withTimeout(a.conn.connect('chat'), 5000, 'reconnect chat');
  assert.equal((await again.ask('say', 'x')).Body, 'ann#1: x');
});

test('controller: new() returning nil, err refuses the namespace connect', T, async (t) => {
  const conn = await dial(t, h.server.url(), { chat: {} }, { headers: { 'X-User': 'nobody' } });
  await assert.rejects(withTimeout(conn.connect('chat'), 5000, 'connect chat'),
    (e) => String(e?.message ?? e).includes('who are you?'));
});

test('JSON codec: msg:unmarshal() reads a table, a returned table and ns:emit(table) are encoded', T, async (t) => {
  const { nsc, got } = await connect(t, 'json', { events: ['pushed'] });
  const reply = await nsc.ask('echo', JSON.stringify({ name: 'zoë', n: 3 }));
  assert.deepEqual(JSON.parse(reply.Body), { name: 'zoë', n: 3, seen: true });
  nsc.emit('push', '42');
  await eventually(() => got.length === 1, 'pushed');
  assert.deepEqual(JSON.parse(got[0][1]), { n: 42, list: [1, 2, 3] });
  // Bodies that cannot be decoded or encoded: nil, err as the answer, never a crash.
  await assert.rejects(nsc.ask('echo', '{not json'), (e) => /^decode: /.test(String(e?.message ?? e)));
  await assert.rejects(nsc.ask('bad', ''), (e) => /^encode: /.test(String(e?.message ?? e)));
  assert.deepEqual(JSON.parse((await nsc.ask('marshal', '')).Body), { a: 1 });
  // Rooms and both broadcasts encode tables the same way.
  const spread = await connect(t, 'json', { events: ['in_room', 'all'] });
  spread.nsc.emit('spread', '');
  await eventually(() => spread.got.length === 3, 'the room emit and two broadcasts');
  assert.deepEqual(spread.got.map(([e, b]) => [e, JSON.parse(b)]).sort((x, y) => JSON.stringify(x) < JSON.stringify(y) ? -1 : 1),
    [['all', { from: 'ns' }], ['all', { from: 'server' }], ['in_room', { room: 'r' }]]);
});

test('a binary codec: a table emitted goes out as a binary frame in its encoding, and decodes', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url('/bin'));
  c.sendText('$0;b;;_OnNamespaceConnect;0;0;');
  assert.equal((await c.next(5000, 'connect answer')).text, '$0;;;;;;');
  const name = Buffer.from('pt');
  const body = Buffer.alloc(6 + name.length);
  body.writeInt32BE(21, 0); body.writeUInt16BE(name.length, 4); name.copy(body, 6);
  c.ws.send(Buffer.concat([Buffer.from(';b;;double;0;0;'), body]), { binary: true });
  const f = await c.next(5000, 'doubled');
  assert.equal(f.binary, true, 'a binary codec makes binary frames');
  const head = Buffer.from(';b;;doubled;0;0;');
  assert.deepEqual(f.data.subarray(0, head.length), head);
  const out = f.data.subarray(head.length);
  assert.equal(out.readInt32BE(0), 42);
  assert.equal(out.subarray(6).toString(), 'pt');
  // A body the codec refuses reaches the handler as nil, err.
  c.ws.send(Buffer.from(';b;;double;0;0;xy'), { binary: true });
  assert.equal((await c.next(5000, 'error event')).text, ';b;;error;0;0;decode: not a point');
});

test('on_upgrade_error: told every refused request with the request, the reason and the text', T, async (t) => {
  const before = (await refusals(t)).length;
  await assert.rejects(RawClient.open(t, h.server.url(), { headers: { Origin: 'http://evil.example' } }),
    (e) => e.statusCode === 403);
  const bad = await rawHttp(h.server.port, 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.ok(bad.status >= 400, bad.statusLine);
  const refused = await RawClient.open(t, h.server.url(), { headers: { 'X-Refuse': '1' } });
  assert.equal(await refused.handshake(), 'Hrefused by the app');
  const noId = await RawClient.open(t, h.server.url(), { headers: { 'X-Empty-Id': '1' } });
  assert.equal(await noId.handshake(), 'Hempty connection ID');
  const silent = await RawClient.open(t, h.server.url());   // upgraded, never sends "M"
  assert.equal((await silent.waitClose(10_000)).code, 1008);
  const all = await eventually(async () => { const r = await refusals(t); return r.length >= before + 5 && r; },
    'five refusals told');
  const got = all.slice(before).map((l) => l.split('|'));
  assert.deepEqual(got.map((r) => r[0]).sort(), ['bad_request', 'handshake_timeout', 'id', 'on_connect', 'origin']);
  assert.equal(got.find((r) => r[0] === 'handshake_timeout')[1], 'handshake timeout (no "M")');
  const origin = got.find((r) => r[0] === 'origin');
  assert.equal(origin[1], 'origin http://evil.example not allowed');
  assert.equal(origin[2], '/echo');
  assert.equal(origin[3], 'http://evil.example');
  assert.match(got.find((r) => r[0] === 'on_connect')[1], /refused by the app/);
  assert.equal(got.find((r) => r[0] === 'id')[1], 'empty connection ID');
  assert.equal(got.find((r) => r[0] === 'bad_request')[1], '400 expected a WebSocket upgrade');
});

test('conn.was_reconnected: false on the first dial, true with the tries after neffos.js reconnected', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const a = await startServer(APP, { args: ['--no-watch'], port });
  let b = null;
  let latest = null;
  let connected = 0;
  t.after(async () => {
    if (latest && !latest.conn.isClosed()) latest.conn.close();
    await a.stop();
    if (b) await b.stop();
  });
  const conn = await dial(null, a.url(), {
    status: { _OnNamespaceConnected: (ns) => { connected++; latest = ns; } },
  }, { reconnect: 50 });
  const ns = await withTimeout(conn.connect('status'), 5000, 'connect status');
  assert.equal((await ns.ask('status', '')).Body, 'false 0');
  await a.stop();                                   // the connection drops
  b = await startServer(APP, { args: ['--no-watch'], port });
  await eventually(() => connected === 2, 'neffos.js reconnected to the new process', 20_000);
  const m = await withTimeout(latest.ask('status', ''), 5000, 'ask status after the reconnect');
  const [was, tries] = m.Body.split(' ');
  assert.equal(was, 'true');
  assert.ok(Number(tries) >= 1, m.Body);
});
