// Issue 3, server-driven actions (docs/protocol.md §7.3, §7.5 to §7.7, §12.1, §17.2.6, §17.6.1): forced connect
// from a handler, a timer and on_connect (neffos.js waitServerConnect resolves), forced disconnect,
// forced join and leave (the client's handlers fire), and closing with a code and a reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, withTimeout, eventually, sleep } from './lib/server.mjs';
import { Recorder, connectAs, askBody, askError } from './lib/parity.mjs';

const h = useServer(appPath('parity_forced.lua'));

/** A client with handlers for default, forced and guarded, connected to default. */
async function client(t, name, options = {}) {
  const rec = new Recorder();
  const conn = await dial(t, h.server.url(),
    { default: {}, forced: rec.handlers(['hi']), guarded: {}, undeclared_on_server: {} },
    { ...options, headers: { 'X-Username': name, ...(options.headers || {}) } });
  return { conn, rec };
}
async function withDefault(t, name, options) {
  const c = await client(t, name, options);
  c.ns = await withTimeout(c.conn.connect('default'), 5000, 'connect default');
  return c;
}
const log = async (ns, id) => (await askBody(ns, 'log', id)).split('\n').filter(Boolean);

test('forced connect from a handler: waitServerConnect resolves; only _OnNamespaceConnected fires on the client (7.3)', T, async (t) => {
  const a = await withDefault(t, 'fc-alice');
  const waiting = a.conn.waitServerConnect('forced');
  assert.equal(await askBody(a.ns, 'force_connect', 'forced'), 'connected forced true');
  const f = await withTimeout(waiting, 5000, 'waitServerConnect');
  assert.equal(f.namespace, 'forced');
  assert.equal(f, a.conn.namespace('forced'));
  assert.deepEqual(a.rec.seen.map((s) => [s.event, s.local]), [['_OnNamespaceConnected', false]],
    'neffos.js does not fire _OnNamespaceConnect for a forced connect (7.3, 16 #9)');
  assert.equal(await askBody(f, 'hi'), 'hi from forced');
  assert.equal(await askBody(a.ns, 'force_connect', 'forced'), 'connected forced true', 'already connected: at once');
  assert.deepEqual(await log(a.ns, 'fc-alice'), [
    'forced _OnNamespaceConnect forced=false local=true',
    'forced _OnNamespaceConnected forced=false local=true'], 'server side: local events');
});

test('raw: the forced connect request and its answer (7.3)', T, async (t) => {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'fc-raw' } });
  assert.equal(await r.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  r.sendText('$2;default;;force_connect;0;0;forced');
  const req = await r.nextText(5000, 'the forced connect');
  const m = /^(\d+);forced;;_OnNamespaceConnect;0;0;$/.exec(req);
  assert.ok(m, `request ${JSON.stringify(req)}`);
  r.sendText(`${m[1]};;;;;;`);
  assert.equal(await r.nextText(5000, 'reply'), '$2;default;;force_connect;0;0;connected forced true');
  assert.equal(await r.ask('$3;forced;;hi;0;0;'), '$3;forced;;hi;0;0;hi from forced');
  // A client that refuses (as neffos.js does for a namespace it lacks) keeps it unconnected.
  r.sendText('$4;default;;force_connect;0;0;undeclared_on_client');
  const req2 = await r.nextText(5000, 'the second forced connect');
  const m2 = /^(\d+);undeclared_on_client;;_OnNamespaceConnect;0;0;$/.exec(req2);
  assert.ok(m2, req2);
  r.sendText(`${m2[1]};undeclared_on_client;;_OnNamespaceConnect;1;0;bad namespace`);
  assert.equal(await r.nextText(5000, 'reply'), '$4;default;;force_connect;1;0;bad namespace');
});

test('forced connect refused: by the client (bad namespace) and by the local OnNamespaceConnect (nothing sent)', T, async (t) => {
  const a = await withDefault(t, 'fr-alice');
  // neffos.js answers a connect to a namespace it does not declare with "bad namespace" (docs/protocol.md §7.3).
  assert.equal(await askError(a.ns, 'force_connect', 'undeclared_on_client'), 'bad namespace');
  assert.equal(a.conn.namespace('undeclared_on_client'), undefined);
  assert.equal(await askError(a.ns, 'force_connect', 'guarded'), 'guarded: not by force');
  assert.equal(a.conn.namespace('guarded'), undefined);
  // The client can still connect itself (the refusal only applies to forced ones).
  const g = await withTimeout(a.conn.connect('guarded'), 5000, 'connect guarded');
  assert.equal(g.namespace, 'guarded');
});

test('forced connect from a timer (neffos.after): waitServerConnect resolves', T, async (t) => {
  const a = await withDefault(t, 'ft-alice');
  const waiting = a.conn.waitServerConnect('forced');
  assert.equal(await askBody(a.ns, 'force_connect_later', 'forced'), 'scheduled');
  const f = await withTimeout(waiting, 5000, 'waitServerConnect');
  assert.equal(f.namespace, 'forced');
  await eventually(async () => (await log(a.ns, 'ft-alice')).includes('timer connect forced -> ok'), 'the timer saw ok');
});

test('forced connect from on_connect: sent right after "A"; waitServerConnect right after dial() resolves', T, async (t) => {
  // With ws's allowSynchronousEvents off, each frame is handled in its own macrotask, so the
  // code after `await dial()` runs before the forced connect is handled (docs/protocol.md §7.3: only connects
  // after the call resolve it). With the default, the connect may be handled first: then the
  // namespace is simply there.
  const a = await client(t, 'fo-alice', { headers: { 'X-Force': 'forced' }, allowSynchronousEvents: false });
  const f = await withTimeout(a.conn.waitServerConnect('forced'), 5000, 'waitServerConnect after dial');
  assert.equal(f.namespace, 'forced');
  assert.deepEqual(a.rec.seen.map((s) => s.event), ['_OnNamespaceConnected']);
  assert.equal(await askBody(f, 'hi'), 'hi from forced');
  const b = await client(t, 'fo-bob', { headers: { 'X-Force': 'forced' } });
  const fb = await eventually(() => b.conn.namespace('forced'), 'forced namespace (default ws options)');
  assert.equal(await askBody(fb, 'hi'), 'hi from forced');
  const d = await withTimeout(b.conn.connect('default'), 5000, 'connect default');
  assert.deepEqual(await log(d, 'fo-alice'), [
    'on_connect connect forced -> forced',
    'forced _OnNamespaceConnect forced=false local=true',
    'forced _OnNamespaceConnected forced=false local=true']);
  // raw: "A<id>" is the first frame, the connect request the second (docs/protocol.md §17.2.2, §17.2.6)
  const r = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'fo-raw', 'X-Force': 'forced' } });
  await sleep(100);
  await r.expectNothing(100, 'nothing before "M"');
  assert.equal(await r.handshake(), 'Afo-raw');
  assert.match(await r.nextText(5000, 'connect request'), /^\d+;forced;;_OnNamespaceConnect;0;0;$/);
});

test('forced disconnect: the client leaves its rooms, fires _OnNamespaceDisconnect; the server notes local events (7.5)', T, async (t) => {
  const a = await withDefault(t, 'fd-alice');
  const waiting = a.conn.waitServerConnect('forced');
  await askBody(a.ns, 'force_connect', 'forced');
  const f = await withTimeout(waiting, 5000, 'forced');
  await withTimeout(f.joinRoom('r1'), 5000, 'join r1');
  await withTimeout(f.joinRoom('r2'), 5000, 'join r2');
  a.rec.seen.length = 0;
  assert.equal(await askBody(a.ns, 'force_disconnect', 'forced'), 'disconnected forced false');
  assert.equal(a.conn.namespace('forced'), undefined);
  assert.deepEqual(a.rec.seen.map((s) => `${s.event} ${s.room} forced=${s.forced} local=${s.local}`.replace('  ', ' ')), [
    '_OnRoomLeave r1 forced=true local=true', '_OnRoomLeft r1 forced=true local=true',
    '_OnRoomLeave r2 forced=true local=true', '_OnRoomLeft r2 forced=true local=true',
    '_OnNamespaceDisconnect forced=false local=false',
  ], 'neffos.js: forced room events with IsLocal=true (16 #10), then _OnNamespaceDisconnect from the wire');
  assert.deepEqual((await log(a.ns, 'fd-alice')).slice(-5), [
    'forced _OnRoomLeave r1 forced=true local=true', 'forced _OnRoomLeft r1 forced=true local=true',
    'forced _OnRoomLeave r2 forced=true local=true', 'forced _OnRoomLeft r2 forced=true local=true',
    'forced _OnNamespaceDisconnect forced=false local=true']);
  assert.equal(await askError(a.ns, 'force_disconnect', 'forced'), 'not connected to forced');
  assert.equal(a.ns.emit('hi', 'x'), true, 'the other namespace goes on');
  assert.equal(await askBody(a.ns, 'log', 'nobody'), '');
});

test('forced join and leave: the client\'s _OnRoomJoin/_OnRoomJoined and _OnRoomLeave/_OnRoomLeft fire (7.6, 7.7)', T, async (t) => {
  const a = await withDefault(t, 'fj-alice');
  const waiting = a.conn.waitServerConnect('forced');
  await askBody(a.ns, 'force_connect', 'forced');
  const f = await withTimeout(waiting, 5000, 'forced');
  a.rec.seen.length = 0;
  assert.equal(await askBody(a.ns, 'force_join', 'forced|vip'), 'joined vip');
  assert.ok(f.room('vip'), 'neffos.js has the room');
  assert.deepEqual(a.rec.seen.map((s) => `${s.event} ${s.room} local=${s.local}`), [
    '_OnRoomJoin vip local=false', '_OnRoomJoined vip local=false']);
  assert.equal(await askBody(a.ns, 'force_join', 'forced|vip'), 'joined vip', 'already joined: no request');
  assert.equal(await askBody(a.ns, 'force_leave', 'forced|vip'), 'left vip');
  assert.equal(f.room('vip'), undefined);
  assert.deepEqual(a.rec.seen.slice(2).map((s) => `${s.event} ${s.room}`), ['_OnRoomLeave vip', '_OnRoomLeft vip']);
  assert.deepEqual((await log(a.ns, 'fj-alice')).slice(-4), [
    'forced _OnRoomJoin vip forced=false local=true', 'forced _OnRoomJoined vip forced=false local=true',
    'forced _OnRoomLeave vip forced=false local=true', 'forced _OnRoomLeft vip forced=false local=true']);
  assert.equal(await askError(a.ns, 'force_leave', 'forced|vip'), 'not in vip');
});

test('close with a code: conn:close(4001, "bye") sends a close frame the client sees (12.1, 17.6.1)', T, async (t) => {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'cc-raw' } });
  assert.equal(await r.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  r.sendText('$2;default;;close_me;0;0;4001|bye');
  assert.deepEqual(await r.waitClose(5000), { code: 4001, reason: 'bye' });
  // neffos.js: the connection ends; its forced local events fire (docs/protocol.md §12.3).
  const a = await withDefault(t, 'cc-alice');
  const waiting = a.conn.waitServerConnect('forced');
  await askBody(a.ns, 'force_connect', 'forced');
  await withTimeout(waiting, 5000, 'forced');
  a.rec.seen.length = 0;
  a.ns.emit('close_me', '4001|bye');
  await eventually(() => a.conn.isClosed(), 'neffos.js sees the close');
  assert.deepEqual(a.rec.seen.map((s) => `${s.event} forced=${s.forced} local=${s.local}`), [
    '_OnNamespaceDisconnect forced=true local=true']);
  const b = await withDefault(t, 'cc-bob');
  await eventually(async () => (await log(b.ns, 'cc-alice')).includes('on_disconnect'), 'on_disconnect ran');
  assert.deepEqual((await log(b.ns, 'cc-alice')).slice(-2), [
    'forced _OnNamespaceDisconnect forced=true local=true', 'on_disconnect']);
});

test('close another connection from a handler (kick), default code 1000, and a bad code is an error', T, async (t) => {
  const a = await withDefault(t, 'kk-alice');
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'kk-raw' } });
  assert.equal(await askBody(a.ns, 'kick', 'kk-raw|4002|kicked by kk-alice'), 'kicked kk-raw');
  assert.deepEqual(await r.waitClose(5000), { code: 4002, reason: 'kicked by kk-alice' });
  assert.equal(await askError(a.ns, 'kick', 'kk-raw|4002|again'), 'no kk-raw', 'gone from server:get');
  const r2 = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'kk-raw2' } });
  assert.match(await askError(a.ns, 'kick', 'kk-raw2|999|x'), /close code 999 may not be sent/);
  assert.ok(r2.isOpen());
  assert.equal(await askBody(a.ns, 'kick', 'kk-raw2||'), 'kicked kk-raw2');
  assert.deepEqual(await r2.waitClose(5000), { code: 1000, reason: '' }, 'conn:close() without a code: 1000');
});
