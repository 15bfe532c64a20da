// permessage-deflate with the real clients under Node (issue 16 points 5, 7, 9): neffos.js dials
// with `ws`, whose perMessageDeflate is on by default, so every neffos.js client under Node
// negotiates it; `ws` with perMessageDeflate off and with a smaller server window is dialled too.
// Asserts the agreed extension, the bytes on the wire, and that a broadcast to compressing
// receivers is compressed once per window size, not once per receiver (neffos_deflate_messages_total).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, serveFor, dial, metricOf, eventually } from './lib/server.mjs';
import { workerOf } from './lib/parity.mjs';

const APP = appPath('deflate.lua');
const json = (n) => JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}`, ok: true })) });
const wsOf = (conn) => conn.conn;   // neffos.js keeps the `ws` WebSocket there
const out = (s) => metricOf(s, 'neffos_deflate_messages_total{dir="out"}');

test('neffos.js under Node negotiates permessage-deflate: asks go compressed both ways, far fewer bytes on the wire', T, async (t) => {
  const s = await serveFor(t, APP);
  const conn = await dial(t, s.url(), { v1: {} });
  assert.equal(wsOf(conn).extensions, 'permessage-deflate');
  const ns = await conn.connect('v1');
  const body = json(400);
  const read0 = wsOf(conn)._socket.bytesRead, written0 = wsOf(conn)._socket.bytesWritten;
  for (let i = 0; i < 5; i++) {
    const reply = await ns.ask('echo', body);
    assert.equal(reply.Body, body);
  }
  const read = wsOf(conn)._socket.bytesRead - read0, written = wsOf(conn)._socket.bytesWritten - written0;
  t.diagnostic(`5 asks of ${body.length} bytes: ${written} bytes sent, ${read} read`);
  assert.ok(read < body.length, `replies compressed: ${read} bytes read for 5 x ${body.length}`);
  assert.ok(written < body.length, `requests compressed: ${written} bytes written`);
  assert.ok(await metricOf(s, 'neffos_deflate_messages_total{dir="in"}') >= 5);
  assert.ok(await out(s) >= 5);
  // Small messages stay plain and work as ever.
  assert.equal((await ns.ask('echo', 'hi')).Body, 'hi');
});

test('a broadcast to compressing receivers is compressed once per window size, whatever the number of receivers; plain receivers get it plain', T, async (t) => {
  const s = await serveFor(t, APP);
  const got = [];
  const receiver = async (options, label) => {
    const c = await dial(t, s.url(), { v1: { chat: (nsc, msg) => { got.push({ label, body: msg.Body }); } } }, options);
    c.w = await workerOf(await c.connect('v1'));   // the worker serving it (1 with one worker)
    return c;
  };
  const full = [];
  for (let i = 0; i < 4; i++) full.push(await receiver(undefined, `deflate${i}`));
  const plain = [await receiver({ perMessageDeflate: false }, 'plain0'), await receiver({ perMessageDeflate: false }, 'plain1')];
  const small = await receiver({ perMessageDeflate: { serverMaxWindowBits: 10 } }, 'window10');
  for (const c of full) assert.equal(wsOf(c).extensions, 'permessage-deflate');
  for (const c of plain) assert.equal(wsOf(c).extensions, '');
  assert.match(wsOf(small).extensions, /permessage-deflate/);

  const sender = await dial(t, s.url(), { v1: {} }, { perMessageDeflate: false });
  const ns = await sender.connect('v1');
  const sw = await workerOf(ns);
  // With --workers N a broadcast returns the receivers on the sender's worker, and each worker
  // compresses its own copy per window size (README, "Workers"): seven and two with one worker.
  const all = [...full, ...plain, small];
  const local = String(all.filter((c) => c.w === sw).length);
  const copies = new Set([...full.map((c) => `${c.w}/15`), `${small.w}/10`]).size;
  for (let round = 1; round <= 2; round++) {
    got.length = 0;
    const before = await out(s);
    const body = json(100 + round);
    assert.equal((await ns.ask('shout', body)).Body, local, 'the receivers on the sender\'s worker');
    await eventually(() => got.length === 7, 'every receiver got the broadcast');
    for (const g of got) assert.equal(g.body, body, g.label);
    // Window 15 (the four) and window 10 (one): two compressor runs, not five (per worker).
    assert.equal(await out(s) - before, copies, 'compressed once per window size (and worker)');
  }
  // The compressing receivers read fewer bytes than the plain ones.
  assert.ok(wsOf(full[0])._socket.bytesRead < wsOf(plain[0])._socket.bytesRead / 2,
    `${wsOf(full[0])._socket.bytesRead} vs ${wsOf(plain[0])._socket.bytesRead} bytes read`);
});

test('--compression off: neffos.js gets no extension and works as before', T, async (t) => {
  const s = await serveFor(t, APP, ['--compression', 'off']);
  const conn = await dial(t, s.url(), { v1: {} });
  assert.equal(wsOf(conn).extensions, '');
  const ns = await conn.connect('v1');
  const body = json(50);
  assert.equal((await ns.ask('echo', body)).Body, body);
  assert.equal(await out(s), 0);
});

test('--compression context: the client keeps its context between messages (ws compresses each against the last)', T, async (t) => {
  const s = await serveFor(t, APP, ['--compression', 'context']);
  const conn = await dial(t, s.url(), { v1: {} });
  assert.equal(wsOf(conn).extensions, 'permessage-deflate');
  const ns = await conn.connect('v1');
  const body = json(300);
  const sock = wsOf(conn)._socket;
  const sent = [];
  for (let i = 0; i < 5; i++) {
    const w0 = sock.bytesWritten;
    assert.equal((await ns.ask('echo', body)).Body, body);
    sent.push(sock.bytesWritten - w0);
  }
  t.diagnostic(`bytes written per ask: ${sent.join(', ')}`);
  // The same request again refers back to the last one: a fraction of the first's bytes.
  for (let i = 1; i < 5; i++) assert.ok(sent[i] < sent[0] / 2, `ask ${i}: ${sent[i]} bytes vs ${sent[0]}`);
  assert.ok(await metricOf(s, 'neffos_deflate_messages_total{dir="in"}') >= 5);
});
