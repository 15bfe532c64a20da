// permessage-deflate (RFC 7692) on raw sockets, issue 16 points 5, 6, 8 and 9: the negotiation as
// the server answers it, compressed echo both ways (RSV1 per message, small messages plain), the
// Autobahn-style robustness cases extended to compressed frames (RSV1 on a control frame or on a
// continuation: 1002; data that is not deflate, or inflates to invalid UTF-8: 1007), and a bomb:
// 10 MB of zeros in ~10 KB compressed against the default --max-message-bytes closes 1009 with
// the server's memory bounded by that maximum, not by the inflated size.
// Hand-made frames on a raw TCP socket; zlib from Node compresses like a client would.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { readFileSync } from 'node:fs';
import { ROOT, withTimeout, serveFor, metricOf } from '../interop/lib/server.mjs';
import { RawWs, frame, OP } from './lib/raw.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'raw_echo.lua');
const T = { timeout: 60_000 };
const MiB = 1024 * 1024;
const ENV = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0` };
const serve = (t, args = []) => serveFor(t, APP, args, { endpoint: '/raw', env: ENV });

/** Upgrades with these extra header lines; resolves { ws, head } (head: the 101 answer's lines). */
const openWith = (t, port, extra = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n') =>
  RawWs.upgrade(t, net.connect({ host: '127.0.0.1', port }), { port, extra, ms: 5000 });

const extensionsOf = (head) => (/^Sec-WebSocket-Extensions: (.*)$/im.exec(head) || [])[1];

/** What a client sends: raw deflate, sync flush, the 00 00 ff ff tail removed (RFC 7692 7.2.1). */
function compress(data) {
  const z = zlib.deflateRawSync(Buffer.from(data), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual([...z.slice(-4)], [0, 0, 0xff, 0xff]);
  return z.slice(0, -4);
}
const inflate = (payload) => zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]),
  { finishFlush: zlib.constants.Z_SYNC_FLUSH });
const RSV1 = 4;   // raw.mjs: rsv = RSV1 << 2 | RSV2 << 1 | RSV3

async function expectClose(ws, code, what) {
  const f = await ws.next(5000, `the close frame (${what})`);
  assert.equal(f.opcode, OP.CLOSE, `${what}: a close frame`);
  assert.equal(f.code, code, `${what}: close code`);
  await withTimeout(ws.end, 5000, `the server ending TCP (${what})`);
}

test('negotiation: the offer is answered with no context takeover both ways; declined offers fall through to the next; off answers none', T, async (t) => {
  const s = await serve(t);
  let { head } = await openWith(t, s.port);
  assert.equal(extensionsOf(head), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  ({ head } = await openWith(t, s.port,
    'Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="10"; client_max_window_bits=12\r\n'));
  assert.equal(extensionsOf(head),
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10');
  ({ head } = await openWith(t, s.port, 'Sec-WebSocket-Extensions: permessage-deflate; unknown_param\r\n'));
  assert.equal(extensionsOf(head), undefined, 'an offer with an unknown parameter is declined (RFC 7692 7)');
  ({ head } = await openWith(t, s.port, ''));
  assert.equal(extensionsOf(head), undefined);
  assert.equal(await metricOf(s, 'neffos_upgrades_deflate_total'), 2);

  const off = await serve(t, ['--compression', 'off']);
  ({ head } = await openWith(t, off.port));
  assert.equal(extensionsOf(head), undefined);

  const ctx = await serve(t, ['--compression', 'context']);
  ({ head } = await openWith(t, ctx.port));
  assert.equal(extensionsOf(head), 'permessage-deflate; server_no_context_takeover');
});

test('compressed messages both ways: RSV1 on the first frame only, fragments put together, small replies plain, text and binary', T, async (t) => {
  const s = await serve(t);
  const { ws } = await openWith(t, s.port);
  const text = JSON.stringify({ user: 'ann', text: 'hello '.repeat(200) });
  ws.send(OP.TEXT, compress(text), { rsv: RSV1 });
  let f = await ws.next(5000, 'the echo');
  assert.equal(f.opcode, OP.TEXT);
  assert.equal(f.rsv, RSV1, 'a reply over --compression-min-bytes is compressed');
  assert.ok(f.payload.length < text.length / 4, `${f.payload.length} bytes on the wire for ${text.length}`);
  assert.equal(inflate(f.payload).toString(), text);

  // A compressed message in three fragments: RSV1 on the first only (RFC 7692 6.1).
  const bin = Buffer.alloc(5000, 0x61);
  const z = compress(bin);
  const a = Math.floor(z.length / 3);
  ws.write(frame(OP.BIN, z.slice(0, a), { fin: false, rsv: RSV1 }),
    frame(OP.CONT, z.slice(a, 2 * a), { fin: false }), frame(OP.PING, 'between'),
    frame(OP.CONT, z.slice(2 * a)));
  // The pong and the echo, in either order (the pong is wslay's, queued until the read ends).
  const two = [await ws.next(5000, 'the pong or the echo'), await ws.next(5000, 'the pong or the echo')];
  assert.deepEqual(two.map((x) => x.opcode).sort((x, y) => x - y), [OP.BIN, OP.PONG]);
  f = two.find((x) => x.opcode === OP.BIN);
  assert.equal(f.opcode, OP.BIN);
  assert.equal(f.rsv, RSV1);
  assert.ok(inflate(f.payload).equals(bin));

  // Under the threshold: the reply goes plain; an uncompressed message is still fine.
  ws.send(OP.TEXT, compress('tiny'), { rsv: RSV1 });
  f = await ws.next(5000, 'the small echo');
  assert.equal(f.rsv, 0);
  assert.equal(f.payload.toString(), 'tiny');
  ws.send(OP.TEXT, 'plain');
  f = await ws.next(5000, 'the plain echo');
  assert.equal(f.payload.toString(), 'plain');
  // An empty compressed message (7.2.3.6: one 0x00 byte).
  // (the app does not echo empty messages: the next echo is the next message's)
  ws.send(OP.BIN, Buffer.from([0]), { rsv: RSV1 });
  ws.send(OP.TEXT, 'after');
  f = await ws.next(5000, 'the echo after the empty message');
  assert.equal(f.payload.toString(), 'after');
  assert.equal(await metricOf(s, 'neffos_deflate_messages_total{dir="in"}'), 4);
  assert.equal(await metricOf(s, 'neffos_deflate_messages_total{dir="out"}'), 2);
});

test('with --compression-min-bytes 0 even a short reply is compressed; a reply deflate would not shrink goes plain', T, async (t) => {
  const s = await serve(t, ['--compression-min-bytes', '0']);
  const { ws } = await openWith(t, s.port);
  ws.send(OP.TEXT, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa');
  let f = await ws.next(5000, 'the echo');
  assert.equal(f.rsv, RSV1);
  assert.equal(inflate(f.payload).toString(), 'a'.repeat(40));
  ws.send(OP.TEXT, 'x');
  f = await ws.next(5000, 'the one-byte echo');
  assert.equal(f.rsv, 0, 'one byte does not shrink');
  assert.equal(f.payload.toString(), 'x');
});

for (const [name, send, code] of [
  ['RSV1 on a ping (a control frame)', (ws) => ws.send(OP.PING, 'x', { rsv: RSV1 }), 1002],
  ['RSV1 on a close frame', (ws) => ws.send(OP.CLOSE, Buffer.from([3, 232]), { rsv: RSV1 }), 1002],
  ['RSV1 on a continuation frame', (ws) => ws.write(frame(OP.TEXT, compress('ab').slice(0, 1), { fin: false, rsv: RSV1 }),
    frame(OP.CONT, compress('ab').slice(1), { rsv: RSV1 })), 1002],
  ['RSV2 on a data frame', (ws) => ws.send(OP.TEXT, compress('ab'), { rsv: 2 }), 1002],
  ['data that is not deflate (a reserved block type)', (ws) => ws.send(OP.BIN, Buffer.from([0xff, 0xff, 0xff]), { rsv: RSV1 }), 1007],
  ['a stored block whose length check fails', (ws) => ws.send(OP.BIN, Buffer.from([0x00, 0x05, 0x00, 0x05, 0x00, 0x68]), { rsv: RSV1 }), 1007],
  ['compressed text that inflates to invalid UTF-8', (ws) => ws.send(OP.TEXT, compress(Buffer.from([0x68, 0xc0, 0xaf])), { rsv: RSV1 }), 1007],
]) {
  test(`${name}: close ${code}`, T, async (t) => {
    const s = await serve(t);
    const { ws, head } = await openWith(t, s.port);
    assert.match(extensionsOf(head), /^permessage-deflate/, 'negotiated');
    send(ws);
    await expectClose(ws, code, name);
    s.assertAlive();
  });
}

test('RSV1 without permessage-deflate negotiated is a protocol error (1002)', T, async (t) => {
  const s = await serve(t);
  const { ws } = await openWith(t, s.port, '');
  ws.send(OP.TEXT, compress('hello'), { rsv: RSV1 });
  await expectClose(ws, 1002, 'RSV1 not negotiated');
});

/** The server's VmRSS and VmHWM in KiB. */
function mem(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(st)[1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

test('a bomb: 10 MB of zeros in ~10 KB compressed closes 1009 at the default --max-message-bytes; the server holds about that maximum, never the 10 MB', T, async (t) => {
  const s = await serve(t);
  const zeros = Buffer.alloc(10 * MiB);
  const bomb = compress(zeros);
  assert.ok(bomb.length < 12 * 1024, `${bomb.length} bytes compressed`);
  // Warm up: one connection and one compressed message, so that the pools and the shared
  // inflater exist before the baseline is taken.
  const warm = await openWith(t, s.port);
  warm.ws.send(OP.BIN, compress(Buffer.alloc(1000)), { rsv: RSV1 });
  await warm.ws.next(5000, 'the warm-up echo');
  const before = mem(s.proc.pid);
  const N = 3;
  for (let i = 0; i < N; i++) {
    const { ws } = await openWith(t, s.port);
    ws.send(OP.BIN, bomb, { rsv: RSV1 });
    await expectClose(ws, 1009, `bomb ${i}`);
  }
  const after = mem(s.proc.pid);
  const grew = Math.max(after.hwm, after.rss) - before.rss;
  t.diagnostic(`RSS ${before.rss} kB -> ${after.rss} kB, peak ${after.hwm} kB (grew ${grew} kB)`);
  // The default maximum (1 MiB) plus the compressed message and allocator slack; a bomb
  // inflated in full would take 10 MiB.
  assert.ok(grew < 6 * 1024, `the server grew by ${grew} kB`);
  assert.equal(await metricOf(s, 'neffos_deflate_refused_total{reason="too_big"}'), N);
  // Logged, rate-limited: at least the first, never one line per bomb sent within a second.
  const lines = s.logs().split('\n').filter((l) => /permessage-deflate: a compressed message refused with close 1009/.test(l));
  assert.ok(lines.length >= 1 && lines.length <= N, `${lines.length} log lines for ${N} bombs:\n${s.logs().slice(-2000)}`);
  // The server goes on; a message just under the maximum inflates fine.
  const { ws } = await openWith(t, s.port);
  const big = Buffer.alloc(MiB - 1, 0x20);
  ws.send(OP.BIN, compress(big), { rsv: RSV1 });
  const f = await ws.next(10_000, 'the big echo');
  assert.ok(inflate(f.payload).equals(big));
  s.assertAlive();
});
