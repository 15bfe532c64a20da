// Issue 3, rooms (docs/protocol.md §7.4, §7.6 to §7.8, §17.5.5): client joins and leaves with notify to the
// others, refusals, room chat, forced leaves on namespace disconnect and on close, room names
// with ';', the neffos.js leaveAll() quirk, and the Lua room API. Several neffos.js clients at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, RawClient, withTimeout, eventually, sleep, neffos } from './lib/server.mjs';
import { connectAs, askBody, askError } from './lib/parity.mjs';

const h = useServer(appPath('parity_rooms.lua'));
const join = (c, room) => c.conn.connect('chat').then(() => withTimeout(c.ns.joinRoom(room), 5000, `join ${room}`));
const chat = (t, name) => connectAs(t, h.server.url(), name, { ns: 'chat', events: ['notify', 'chat', 'roomsay'] });
const members = (c, room) => askBody(c.ns, 'members', room);
const log = (c, id) => askBody(c.ns, 'log', id).then((s) => (s ? s.split('\n') : []));

test('join and leave: the others in the room are notified; the joiner/leaver is not (7.6, 7.7)', T, async (t) => {
  const [a, b, c, outsider] = await Promise.all(['j-alice', 'j-bob', 'j-carol', 'j-dave'].map((n) => chat(t, n)));
  const room = await join(a, 'lobby');
  assert.equal(room.name, 'lobby');
  assert.deepEqual(a.rec.system(), ['_OnRoomJoin lobby', '_OnRoomJoined lobby'], 'fired locally after the reply (7.6)');
  await join(b, 'lobby');
  assert.deepEqual(await a.rec.count('notify', 1).then((x) => x.map((s) => s.body)), ['j-bob joined lobby']);
  assert.equal(a.rec.of('notify')[0].room, 'lobby', 'the notify travels in the room');
  await join(c, 'lobby');
  await a.rec.count('notify', 2);
  await b.rec.count('notify', 1);
  assert.equal(await members(a, 'lobby'), 'j-alice,j-bob,j-carol');

  assert.equal(await withTimeout(b.ns.room('lobby').leave(), 5000, 'b leaves'), null, 'room.leave() resolves null');
  assert.equal(b.ns.room('lobby'), undefined);
  assert.deepEqual(b.rec.system(), ['_OnRoomJoin lobby', '_OnRoomJoined lobby', '_OnRoomLeave lobby', '_OnRoomLeft lobby']);
  await a.rec.count('notify', 3);
  await c.rec.count('notify', 1);
  assert.deepEqual(a.rec.bodies('notify'), ['j-bob joined lobby', 'j-carol joined lobby', 'j-bob left lobby']);
  assert.deepEqual(c.rec.bodies('notify'), ['j-bob left lobby']);
  assert.equal(await members(a, 'lobby'), 'j-alice,j-carol');
  await sleep(150);
  assert.deepEqual(b.rec.bodies('notify'), ['j-carol joined lobby'], 'the leaver hears nothing of its own leave');
  assert.deepEqual(outsider.rec.of('notify'), [], 'a client outside the room hears nothing');
  // The server's events, in order, with their flags (docs/protocol.md §7.6, §7.7: client requests are not local).
  assert.deepEqual(await log(a, 'j-bob'), [
    'join lobby forced=false local=false', 'joined lobby forced=false local=false',
    'leave lobby forced=false local=false', 'left lobby forced=false local=false']);
});

test('raw: join/leave replies, already joined / not joined get "$T;;;;;;" and no events (7.9)', T, async (t) => {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'j-raw' } });
  assert.equal(await r.ask('$1;chat;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;chat;r1;_OnRoomJoin;0;0;'), '$2;;;;;;');
  assert.equal(await r.ask('$3;chat;r1;_OnRoomJoin;0;0;'), '$3;;;;;;', 'already joined');
  assert.equal(await r.ask('$4;chat;r1;_OnRoomLeave;0;0;'), '$4;;;;;;');
  assert.equal(await r.ask('$5;chat;r1;_OnRoomLeave;0;0;'), '$5;;;;;;', 'not joined');
  r.sendText('$6;nope;r1;_OnRoomJoin;0;0;');
  r.sendText('$7;nope;r1;_OnRoomLeave;0;0;');
  r.sendText(';chat;r2;_OnRoomJoin;0;0;');
  r.sendText('$8;chat;r2;_OnRoomJoin;0;1;');
  await r.expectNothing(300, 'nothing for a namespace not connected, no token or isNoOp');
  const a = await chat(t, 'j-rawreader');
  assert.deepEqual(await log(a, 'j-raw'), [
    'join r1 forced=false local=false', 'joined r1 forced=false local=false',
    'leave r1 forced=false local=false', 'left r1 forced=false local=false']);
  assert.equal(await members(a, 'r2'), '', 'the ignored joins joined nothing');
});

test('refused join: joinRoom() rejects with the OnRoomJoin error text; no room on either side', T, async (t) => {
  const a = await chat(t, 'rj-alice');
  await assert.rejects(withTimeout(a.ns.joinRoom('locked'), 5000, 'join locked'),
    (e) => e instanceof Error && e.message === 'room locked');
  assert.equal(a.ns.room('locked'), undefined);
  assert.deepEqual(a.rec.system(), [], 'no _OnRoomJoin/_OnRoomJoined on the client');
  assert.equal(await members(a, 'locked'), '');
  assert.deepEqual(await log(a, 'rj-alice'), ['join locked forced=false local=false'], 'no OnRoomJoined on the server');
  const r = await RawClient.connect(t, h.server.url());
  assert.equal(await r.ask('$1;chat;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;chat;locked;_OnRoomJoin;0;0;'), '$2;chat;locked;_OnRoomJoin;1;0;room locked');
});

test('refused leave: room.leave() resolves with the error (docs/protocol.md §7.7: neffos.js returns it), the room stays', T, async (t) => {
  const [a, b] = await Promise.all([chat(t, 'rl-alice'), chat(t, 'rl-bob')]);
  // b first (see "ns:leave_all" below for why): b hears a join
  await join(b, 'sticky');
  await join(a, 'sticky');
  await b.rec.count('notify', 1);
  const err = await withTimeout(a.ns.room('sticky').leave(), 5000, 'leave sticky');
  assert.ok(err instanceof Error, 'askRoomLeave returns (not throws) the server error');
  assert.equal(err.message, 'cannot leave sticky');
  assert.ok(a.ns.room('sticky'), 'the room stays on the client');
  assert.equal(await members(a, 'sticky'), 'rl-alice,rl-bob', 'and on the server');
  await sleep(150);
  assert.deepEqual(b.rec.bodies('notify'), ['rl-alice joined sticky'], 'no "left" notify');
  // Still a member: room chat reaches it.
  b.ns.room('sticky').emit('chat', 'still there?');
  await a.rec.count('chat', 1);
  assert.deepEqual(a.rec.bodies('chat'), ['rl-bob: still there?']);
  const r = await RawClient.connect(t, h.server.url());
  assert.equal(await r.ask('$1;chat;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;chat;sticky;_OnRoomJoin;0;0;'), '$2;;;;;;');
  assert.equal(await r.ask('$3;chat;sticky;_OnRoomLeave;0;0;'), '$3;chat;sticky;_OnRoomLeave;1;0;cannot leave sticky');
});

test('room chat reaches only the other members of that room', T, async (t) => {
  const [a, b, c, d] = await Promise.all(['rc-a', 'rc-b', 'rc-c', 'rc-d'].map((n) => chat(t, n)));
  await Promise.all([join(a, 'red'), join(b, 'red'), join(c, 'blue'), join(d, 'red'), join(d, 'blue')]);
  assert.equal(a.ns.room('red').emit('chat', 'hello red'), true);
  assert.equal(c.ns.room('blue').emit('chat', 'hello blue'), true);
  await b.rec.count('chat', 1);
  await d.rec.count('chat', 2);
  await sleep(150);
  assert.deepEqual(a.rec.bodies('chat'), [], 'not to the sender');
  assert.deepEqual(b.rec.of('chat').map((s) => `${s.room} ${s.body}`), ['red rc-a: hello red']);
  assert.deepEqual(c.rec.bodies('chat'), []);
  assert.deepEqual(d.rec.of('chat').map((s) => `${s.room} ${s.body}`).sort(), ['blue rc-c: hello blue', 'red rc-a: hello red']);
  // neffos.js refuses locally to emit in a room it has not joined (docs/protocol.md §7.6).
  assert.equal(a.ns.room('blue'), undefined);
});

test('namespace disconnect leaves every room with forced events (7.4); the others are notified', T, async (t) => {
  const [a, b] = await Promise.all([chat(t, 'nd-alice'), chat(t, 'nd-bob')]);
  // b first (see "ns:leave_all" below for why): b hears a join, then leave
  await join(b, 'x');
  await join(b, 'sticky');
  await join(a, 'x');
  await join(a, 'sticky');
  await b.rec.count('notify', 2);
  assert.ok(await withTimeout(a.ns.disconnect(), 5000, 'disconnect') == null, 'disconnect() resolves without an error');
  await b.rec.count('notify', 4);
  assert.deepEqual(b.rec.bodies('notify'), ['nd-alice joined x', 'nd-alice joined sticky', 'nd-alice left x', 'nd-alice left sticky'],
    'rooms left in join order; a refusing OnRoomLeave cannot keep a forced leave');
  assert.deepEqual(a.rec.system(), ['_OnRoomJoin x', '_OnRoomJoined x', '_OnRoomJoin sticky', '_OnRoomJoined sticky',
    '_OnRoomLeave x', '_OnRoomLeft x', '_OnRoomLeave sticky', '_OnRoomLeft sticky', '_OnNamespaceDisconnect'],
    'the client fires the forced leaves too (7.4), then _OnNamespaceDisconnect');
  // Server side (docs/protocol.md §7.4): OnNamespaceDisconnect decides first, then the rooms are left (forced, not local).
  assert.deepEqual((await log(b, 'nd-alice')).slice(4), [
    'disconnect forced=false local=false',
    'leave x forced=true local=false', 'left x forced=true local=false',
    'leave sticky forced=true local=false', 'left sticky forced=true local=false']);
  assert.equal(await members(b, 'x'), 'nd-bob');
  assert.equal(await members(b, 'sticky'), 'nd-bob');
});

test('close leaves every room with forced local events, then on_disconnect (7.8)', T, async (t) => {
  const [a, b] = await Promise.all([chat(t, 'cl-alice'), chat(t, 'cl-bob')]);
  // b first (see "ns:leave_all" below for why): b hears a join, then leave
  await join(b, 'y');
  await join(a, 'y');
  await join(a, 'sticky');
  await b.rec.count('notify', 1);
  a.conn.close();
  await b.rec.count('notify', 2);
  assert.deepEqual(b.rec.bodies('notify'), ['cl-alice joined y', 'cl-alice left y']);
  await eventually(async () => (await log(b, 'cl-alice')).includes('on_disconnect'), 'on_disconnect');
  assert.deepEqual((await log(b, 'cl-alice')).slice(4), [
    'leave y forced=true local=true', 'left y forced=true local=true',
    'leave sticky forced=true local=true', 'left sticky forced=true local=true',
    'disconnect forced=true local=true', 'on_disconnect']);
  assert.equal(await members(b, 'y'), 'cl-bob');
  assert.equal(await members(b, 'sticky'), '');
});

test('room names with ";" work both ways, escaped on the wire (5.2)', T, async (t) => {
  const [a, b] = await Promise.all([chat(t, 'sc-alice'), chat(t, 'sc-bob')]);
  // the raw client first (see "ns:leave_all" below for why): it hears every join after its own
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'sc-raw' } });
  assert.equal(await r.ask('$1;chat;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;chat;a@%!semicolon@%!b;_OnRoomJoin;0;0;'), '$2;;;;;;');
  await join(a, 'a;b');
  assert.equal(await r.nextText(5000, 'notify'), ';chat;a@%!semicolon@%!b;notify;0;0;sc-alice joined a;b');
  assert.equal(await members(a, 'a;b'), 'sc-alice,sc-raw');
  a.ns.room('a;b').emit('chat', 'semi;colon');
  assert.equal(await r.nextText(5000, 'room chat'), ';chat;a@%!semicolon@%!b;chat;0;0;sc-alice: semi;colon');
  await join(b, 'a;b');
  assert.equal(await r.nextText(5000, 'notify'), ';chat;a@%!semicolon@%!b;notify;0;0;sc-bob joined a;b');
  await a.rec.count('notify', 1);
  assert.deepEqual(a.rec.of('notify').map((s) => [s.room, s.body]), [['a;b', 'sc-bob joined a;b']]);
  assert.equal(await withTimeout(b.ns.room('a;b').leave(), 5000, 'leave a;b'), null);
  assert.equal(await r.nextText(5000, 'notify'), ';chat;a@%!semicolon@%!b;notify;0;0;sc-bob left a;b');
  assert.equal(await askBody(a.ns, 'lua_room', 'a;b'), 'a;b chat true');
});

test('leaveAll() quirk: neffos.js sends _OnRoomLeft with a token; the server leaves the rooms (7.7, 17.5.5)', T, async (t) => {
  const [a, b] = await Promise.all([chat(t, 'la-alice'), chat(t, 'la-bob')]);
  // b first, then a: b hears a join each room (see "ns:leave_all" below for why this order)
  for (const room of ['q1', 'q2', 'q3']) await join(b, room);
  for (const room of ['q1', 'q2', 'q3']) await join(a, room);
  await b.rec.count('notify', 3);
  b.rec.seen.length = 0;
  assert.equal(await withTimeout(a.ns.leaveAll(), 5000, 'leaveAll'), null, 'leaveAll resolves null at once');
  // The server answered each request with the empty reply and really left the rooms.
  await b.rec.count('notify', 3);
  assert.deepEqual(b.rec.bodies('notify').sort(), ['la-alice left q1', 'la-alice left q2', 'la-alice left q3']);
  for (const room of ['q1', 'q2', 'q3']) assert.equal(await members(b, room), 'la-bob', `members of ${room}`);
  assert.deepEqual((await log(b, 'la-alice')).filter((l) => /^le/.test(l)).sort(), [
    'leave q1 forced=false local=false', 'leave q2 forced=false local=false', 'leave q3 forced=false local=false',
    'left q1 forced=false local=false', 'left q2 forced=false local=false', 'left q3 forced=false local=false']);
  // What neffos.js 0.1.34 itself makes of the three empty replies: it reuses one message
  // object, so it only forgets the last room and fires _OnRoomLeft with that name.
  await eventually(() => a.ns.room('q3') === undefined, 'the client forgets q3');
  await a.rec.count('_OnRoomLeft', 6);
  assert.ok(a.rec.of('_OnRoomLeft').every((s) => s.room === 'q3'));
  assert.ok(a.ns.room('q1') && a.ns.room('q2'), 'the client still believes it is in q1 and q2');

  // Raw bytes: "_OnRoomLeft" with a token is a leave and answered empty; without one it is ignored.
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'la-raw' } });
  assert.equal(await r.ask('$1;chat;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;chat;q9;_OnRoomJoin;0;0;'), '$2;;;;;;');
  r.sendText(';chat;q9;_OnRoomLeft;0;0;');
  await r.expectNothing(200, 'no answer to a token-less _OnRoomLeft');
  assert.equal(await members(b, 'q9'), 'la-raw', 'and it did not leave');
  assert.equal(await r.ask('$3;chat;q9;_OnRoomLeft;0;0;'), '$3;;;;;;');
  assert.equal(await members(b, 'q9'), '');
});

test('Lua: ns:join_room, ns:rooms(), ns:room(name), room:emit, room:leave; the client sees forced join/leave', T, async (t) => {
  const [a, b] = await Promise.all([chat(t, 'lu-alice'), chat(t, 'lu-bob')]);
  await join(b, 'lr1');
  assert.equal(await askBody(a.ns, 'lua_join', 'lr1'), 'lr1');
  assert.equal(await askBody(a.ns, 'lua_join', 'lr2'), 'lr2');
  assert.equal(await askBody(a.ns, 'lua_join', 'lr1'), 'lr1', 'already joined: at once');
  assert.ok(a.ns.room('lr1') && a.ns.room('lr2'), 'neffos.js joined both');
  assert.deepEqual(a.rec.system(), ['_OnRoomJoin lr1', '_OnRoomJoined lr1', '_OnRoomJoin lr2', '_OnRoomJoined lr2'],
    'a forced join fires _OnRoomJoin then _OnRoomJoined on the client (7.6)');
  await b.rec.count('notify', 1);
  assert.deepEqual(b.rec.bodies('notify'), ['lu-alice joined lr1'], 'OnRoomJoined runs on the server for a forced join');
  assert.equal(await askBody(a.ns, 'lua_rooms'), 'lr1,lr2');
  assert.equal(await askBody(a.ns, 'lua_room', 'lr2'), 'lr2 chat true');
  assert.equal(await askError(a.ns, 'lua_room', 'nope'), 'no room nope');
  assert.equal(await members(a, 'lr1'), 'lu-alice,lu-bob');

  assert.equal(await askBody(a.ns, 'lua_room_emit', 'lr1|to the room'), 'true');
  await a.rec.count('roomsay', 1);
  assert.deepEqual(a.rec.of('roomsay').map((s) => [s.room, s.body]), [['lr1', 'to the room']],
    'room:emit sends to this connection, in the room');
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'lu-raw' } });
  assert.equal(await r.ask('$1;chat;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  r.sendText('$2;chat;;lua_join;0;0;z;1');
  const req = await r.nextText(5000, 'forced join request');
  const m = /^(\d+);chat;z@%!semicolon@%!1;_OnRoomJoin;0;0;$/.exec(req);
  assert.ok(m, `forced join frame ${JSON.stringify(req)}`);
  r.sendText(`${m[1]};;;;;;`);
  assert.equal(await r.nextText(5000, 'lua_join reply'), '$2;chat;;lua_join;0;0;z;1');
  r.sendText('$3;chat;;lua_leave;0;0;z;1');
  const lreq = await r.nextText(5000, 'forced leave request');
  const l = /^(\d+);chat;z@%!semicolon@%!1;_OnRoomLeave;0;0;$/.exec(lreq);
  assert.ok(l, `forced leave frame ${JSON.stringify(lreq)}`);
  r.sendText(`${l[1]};;;;;;`);
  assert.equal(await r.nextText(5000, 'lua_leave reply'), '$3;chat;;lua_leave;0;0;left z;1, still in: 0');

  // room:leave from Lua: the client fires _OnRoomLeave/_OnRoomLeft; the others hear it.
  assert.equal(await askBody(a.ns, 'lua_leave', 'lr1'), 'left lr1, still in: 1');
  assert.equal(a.ns.room('lr1'), undefined);
  assert.deepEqual(a.rec.system().slice(4), ['_OnRoomLeave lr1', '_OnRoomLeft lr1']);
  await b.rec.count('notify', 2);
  assert.deepEqual(b.rec.bodies('notify'), ['lu-alice joined lr1', 'lu-alice left lr1']);
  assert.deepEqual((await log(b, 'lu-alice')).slice(-2), ['leave lr1 forced=false local=true', 'left lr1 forced=false local=true'],
    'server-initiated: OnRoomLeave/OnRoomLeft fire locally after the client answered');
  assert.equal(await askBody(a.ns, 'lua_rooms'), 'lr2');
});

test('Lua: room:ask asks the client inside the room; ns:leave_all leaves every room, one after the other', T, async (t) => {
  const a = await connectAs(t, h.server.url(), 'lu2-alice', {
    ns: 'chat', events: ['notify'],
    own: { roomq: (ns, msg) => neffos.reply(`${msg.Room}>${msg.Body}`) },
  });
  const b = await chat(t, 'lu2-bob');
  // b first: every notify b gets is then about a (joined, then left), whatever runs when. With
  // --workers N, a's OnRoomJoined (a broadcast to the room, run after a's join reply) runs on
  // its worker while b may already be joining the same room on another, so a b that joins
  // second may or may not hear a's join ("join and leave" above asserts that order).
  for (const room of ['s1', 's2', 'sticky']) await join(b, room);
  for (const room of ['s1', 's2', 'sticky']) await join(a, room);
  await b.rec.count('notify', 3);
  assert.equal(await askBody(a.ns, 'lua_room_ask', 's2|where?'), 's2:s2>where?', 'the question carries the room');
  a.rec.seen.length = 0;
  assert.equal(await askBody(a.ns, 'lua_leave_all'), 'left all, still in: 0');
  assert.equal(await askBody(a.ns, 'lua_rooms'), '');
  for (const room of ['s1', 's2', 'sticky']) assert.equal(a.ns.room(room), undefined, `the client left ${room}`);
  assert.deepEqual(a.rec.system(), ['_OnRoomLeave s1', '_OnRoomLeft s1', '_OnRoomLeave s2', '_OnRoomLeft s2',
    '_OnRoomLeave sticky', '_OnRoomLeft sticky']);
  await b.rec.count('notify', 6);
  assert.deepEqual(b.rec.bodies('notify'), ['lu2-alice joined s1', 'lu2-alice joined s2', 'lu2-alice joined sticky',
    'lu2-alice left s1', 'lu2-alice left s2', 'lu2-alice left sticky'],
    'a server-initiated leave is not refused by the local OnRoomLeave (docs/protocol.md §7.7: the server fires it after the client left)');
});
