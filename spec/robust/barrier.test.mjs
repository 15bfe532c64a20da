// The ping barrier on the wire (issue 12 point 3, docs/architecture.md "Frames after a reply"):
// right behind a namespace connect or room join reply the server sends a ping, and holds what
// follows until its pong; a client that never answers gets the held frames after a bounded time,
// once, and no more barriers. Raw sockets: this client answers pings only when told to.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startServer, withTimeout, serveFor } from '../interop/lib/server.mjs';
import { RawWs, OP } from './lib/raw.mjs';

const APP = path.join(ROOT, 'spec', 'interop', 'apps', 'ordering.lua');
const T = { timeout: 60_000 };

const serve = (t, args = [], opts = {}) => serveFor(t, APP, args, opts);

const text = (f, what) => {
  assert.equal(f.opcode, OP.TEXT, `${what}: opcode ${f.opcode} ${f.payload.toString('latin1')}`);
  return f.payload.toString('utf8');
};

async function handshake(t, s) {
  const ws = await RawWs.open(t, s.port, '/echo');
  ws.send(OP.TEXT, 'M');
  const id = text(await ws.next(5000, 'A'), 'handshake').slice(1);
  return { ws, id };
}

test('connect reply, then a ping; the welcome emit and the forced join wait for its pong; a join reply too', T, async (t) => {
  const s = await serve(t);
  const { ws, id } = await handshake(t, s);
  ws.send(OP.TEXT, '$1;welcome;;_OnNamespaceConnect;0;0;');
  assert.equal(text(await ws.next(5000, 'reply'), 'reply'), '$1;;;;;;');
  const ping = await ws.next(5000, 'the ping');
  assert.equal(ping.opcode, OP.PING, 'a ping right behind the reply');
  assert.equal(ping.payload.length, 8);
  await ws.quiet(300);   // held: nothing until the pong (the fallback is seconds away)
  ws.send(OP.PONG, ping.payload);
  assert.equal(text(await ws.next(5000, 'welcome'), 'welcome'), `;welcome;;welcome;0;0;welcome ${id}`);
  const join = text(await ws.next(5000, 'forced join'), 'forced join');
  const m = /^(\d+);welcome;lobby;_OnRoomJoin;0;0;$/.exec(join);
  assert.ok(m, join);
  ws.send(OP.TEXT, `${m[1]};;;;;;`);
  assert.equal(text(await ws.next(5000, 'joined'), 'joined'), ';welcome;;joined;0;0;lobby');
  // A client's join: reply, ping; the next frame (an answer to an ask sent at once) waits for the pong.
  ws.send(OP.TEXT, '$2;welcome;r2;_OnRoomJoin;0;0;');
  ws.send(OP.TEXT, '$3;welcome;;echo;0;0;after');
  assert.equal(text(await ws.next(5000, 'join reply'), 'join reply'), '$2;;;;;;');
  const ping2 = await ws.next(5000, 'the second ping');
  assert.equal(ping2.opcode, OP.PING);
  assert.notDeepEqual(ping2.payload, ping.payload, 'each barrier has its own payload');
  await ws.quiet(300);
  ws.send(OP.PONG, ping2.payload);
  assert.equal(text(await ws.next(5000, 'echo'), 'echo'), '$3;welcome;;echo;0;0;after');
});

test('a client that never answers pings gets the held frames after the fallback, then no more barriers', T, async (t) => {
  const s = await serve(t);
  const { ws, id } = await handshake(t, s);
  ws.send(OP.TEXT, '$1;welcome;;_OnNamespaceConnect;0;0;');
  assert.equal(text(await ws.next(5000, 'reply'), 'reply'), '$1;;;;;;');
  assert.equal((await ws.next(5000, 'the ping')).opcode, OP.PING);
  // Never ponged: released by the fallback (2 s, checked every 250 ms), bounded here by 10 s.
  assert.equal(text(await ws.next(10_000, 'welcome'), 'welcome'), `;welcome;;welcome;0;0;welcome ${id}`);
  const m = /^(\d+);welcome;lobby;_OnRoomJoin;0;0;$/.exec(text(await ws.next(5000, 'forced join'), 'join'));
  ws.send(OP.TEXT, `${m[1]};;;;;;`);
  assert.equal(text(await ws.next(5000, 'joined'), 'joined'), ';welcome;;joined;0;0;lobby');
  ws.send(OP.TEXT, '$2;chat;;_OnNamespaceConnect;0;0;');
  ws.send(OP.TEXT, '$3;chat;;echo;0;0;x');
  assert.equal(text(await ws.next(5000, 'reply'), 'reply'), '$2;;;;;;');
  assert.equal(text(await ws.next(5000, 'echo, no ping before it'), 'echo'), '$3;chat;;echo;0;0;echo: x');
  assert.match(s.logs(), /no pong within 2000 ms/);
});

test('held frames count against --max-outgoing-bytes: a client that holds the barrier cannot grow them past it', T, async (t) => {
  const s = await serve(t, ['--max-outgoing-bytes', '65536']);
  const { ws } = await handshake(t, s);
  ws.send(OP.TEXT, '$1;burst;;_OnNamespaceConnect;0;0;');   // OnNamespaceConnected emits 100 x 1000 bytes
  assert.equal(text(await ws.next(5000, 'reply'), 'reply'), '$1;;;;;;');
  assert.equal((await ws.next(5000, 'the ping')).opcode, OP.PING);
  // No pong: the emits are held, and past 64 KiB the connection is closed as a slow reader would be.
  let f;
  let bursts = 0;
  for (let i = 0; i < 200; i++) {
    f = await ws.next(10_000, 'the held emits, then the close');
    if (f.opcode !== OP.TEXT) break;
    bursts++;
  }
  assert.equal(f.opcode, OP.CLOSE, `a close frame after ${bursts} emits`);
  assert.equal(f.code, 1008);
  assert.equal(f.reason, 'outgoing queue full');
  assert.ok(bursts > 0 && bursts < 100, `${bursts} emits went out before the close`);
});
