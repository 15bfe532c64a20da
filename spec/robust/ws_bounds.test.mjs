// Memory per connection follows the configured bounds on the WebSocket layer's own paths
// (issue 11 points 1 and 3), measured on the server process itself (VmRSS / VmHWM):
//  - pings from a client that never reads: the pongs count against --max-outgoing-bytes, the
//    connection stops being read and is dropped as a slow reader;
//  - a message sent as 1-byte fragments costs the server about its payload, not a heap chunk
//    per fragment.
// Raw TCP sockets with hand-made frames; every loop is bounded in bytes and time, and every
// wait is on an event (a pong, the end of TCP), not on a delay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, rawHttp, startServer, withTimeout, serveFor, metricOf } from '../interop/lib/server.mjs';
import { RawWs, frame, OP } from './lib/raw.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'raw_echo.lua');
const T = { timeout: 120_000 };
const MiB = 1024 * 1024;
// A small ASan quarantine: freed memory it holds back would otherwise count as growth.
const ENV = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0` };

const serve = (t, args) => serveFor(t, APP, args, { endpoint: '/raw', env: ENV });

/** { rss, hwm } of the server in KiB. */
function mem(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(st)[1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Watches the server's resident memory from now on; peak() is the most it reached (KiB):
 *  exact (VmHWM) once the high-water mark moved past where it was, else the highest sample. */
function watchMemory(pid) {
  const start = mem(pid);
  let max = start.rss;
  const timer = setInterval(() => { try { max = Math.max(max, mem(pid).rss); } catch { /* exited */ } }, 10);
  return {
    base: start.rss,
    peak() {
      clearInterval(timer);
      const now = mem(pid);
      return now.hwm > start.hwm ? now.hwm : Math.max(max, now.rss);
    },
  };
}

const metric = metricOf;

/** Writes `chunk` until `stop()` or `cap` bytes, honouring the socket's back-pressure;
 *  returns the bytes written. */
async function writeUntil(ws, chunk, cap, stop) {
  let sent = 0;
  while (sent < cap && !stop()) {
    sent += chunk.length;
    if (!ws.sock.write(chunk)) {
      await Promise.race([new Promise((r) => ws.sock.once('drain', r)), ws.end]);
    }
  }
  return sent;
}

test('pings from a client that never reads: pongs count against --max-outgoing-bytes, the connection is dropped as a slow reader, RSS stays near the bound', T, async (t) => {
  const BOUND = 1 * MiB;
  const s = await serve(t, ['--max-outgoing-bytes', String(BOUND)]);
  const ws = await RawWs.open(t, s.port, '/raw');
  ws.sock.pause();   // never reads: every pong stays queued somewhere
  const m = watchMemory(s.proc.pid);

  // 1,024 pings of 125 bytes per write; without a bound the server would queue a pong for each
  // of them: 128 MiB of pings, far more than the bound plus the kernel's socket buffers.
  const pings = Buffer.concat(Array.from({ length: 1024 }, () => frame(OP.PING, Buffer.alloc(125, 0x70))));
  const CAP = 128 * MiB;
  const sent = await withTimeout(writeUntil(ws, pings, CAP, () => ws.ended), 90_000, 'the ping flood');
  await withTimeout(ws.end, 30_000, `the server dropping the connection (${sent} bytes of pings sent)`);
  const peak = m.peak();
  t.diagnostic(`${(sent / MiB).toFixed(1)} MiB of pings sent; server RSS ${m.base} kB -> peak ${peak} kB`);
  assert.ok(sent < CAP, 'the server dropped the connection before the whole flood was sent');

  assert.equal(await metric(s, 'neffos_limit_hits_total{limit="outgoing_queue"}'), 1);
  assert.equal((s.logs().match(/outgoing queue full/g) || []).length, 1, 'logged once for the connection');
  assert.match(s.logs(), /limit hit: outgoing queue full \(slow reader\), closing with 1008/);
  // The bound plus a constant (allocator slack, ASan's quarantine, one read of input).
  assert.ok(peak - m.base <= BOUND / 1024 + 16 * 1024,
    `RSS grew by ${peak - m.base} kB with --max-outgoing-bytes ${BOUND}`);

  // The server goes on: a new client gets its echo and its pong.
  const ok = await RawWs.open(t, s.port, '/raw');
  ok.send(OP.PING, 'still there');
  const pong = await ok.next(5000, 'the pong');
  assert.equal(pong.opcode, OP.PONG);
  ok.send(OP.TEXT, 'echo');
  assert.equal((await ok.next(5000, 'the echo')).payload.toString(), 'echo');
  s.assertAlive();
});

test('a client that pings in bursts and reads is answered every ping, in order, and not dropped', T, async (t) => {
  const BOUND = 64 * 1024;
  const s = await serve(t, ['--max-outgoing-bytes', String(BOUND)]);
  const ws = await RawWs.open(t, s.port, '/raw');
  const N = 256;
  const pings = Buffer.concat(Array.from({ length: N }, (_, i) => frame(OP.PING, Buffer.from(String(i).padStart(125, '.')))));
  ws.write(pings);
  for (let i = 0; i < N; i++) {
    const f = await ws.next(5000, `pong ${i}`);
    assert.equal(f.opcode, OP.PONG);
    assert.equal(f.payload.toString().replace(/^\.+/, ''), String(i));
  }
  ws.send(OP.TEXT, 'after');
  assert.equal((await ws.next(5000, 'the echo')).payload.toString(), 'after');
  assert.equal(await metric(s, 'neffos_limit_hits_total{limit="outgoing_queue"}'), 0);
});

test('back-pressure: while a send from a timer holds the output over the bound, pings are not read (no pongs queued, no drop); once the client reads, every one is answered', T, async (t) => {
  // The timer's send passes the bound on its own (it found the queue under it). Pings read now
  // would push it further and get the client dropped as a slow reader; instead they wait unread
  // in the kernel until the output drains below half the bound.
  const BOUND = 256 * 1024, BIG = 16 * MiB;   // BIG: far more than the sockets' kernel buffers (~4 MiB each)
  const s = await startServer(path.join(ROOT, 'spec', 'robust', 'apps', 'later_echo.lua'),
    { args: ['--no-watch', '--max-outgoing-bytes', String(BOUND)], endpoint: '/raw', env: ENV });
  t.after(() => s.stop());
  const ws = await RawWs.open(t, s.port, '/raw');
  ws.sock.pause();
  ws.send(OP.TEXT, `big ${BIG}`);
  // The frame is queued (counted in /metrics): the output is now over the bound.
  const outs = async () => metric(s, 'neffos_messages_out_total');
  for (let i = 0; i < 200 && (await outs()) < 1; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(await outs(), 1, 'the timer sent its frame');

  const N = 1000;
  ws.write(Buffer.concat(Array.from({ length: N }, (_, i) => frame(OP.PING, Buffer.from(String(i).padStart(125, '.'))))));
  ws.sock.resume();
  const big = await ws.next(60_000, 'the big frame');
  assert.equal(big.opcode, OP.BIN);
  assert.equal(big.payload.length, BIG);
  for (let i = 0; i < N; i++) {
    const f = await ws.next(10_000, `pong ${i}`);
    assert.equal(f.opcode, OP.PONG, `frame ${i} after the big one`);
    assert.equal(f.payload.toString().replace(/^\.+/, ''), String(i));
  }
  assert.equal(await metric(s, 'neffos_limit_hits_total{limit="outgoing_queue"}'), 0, 'not dropped');
  ws.send(OP.PING, 'again');
  assert.equal((await ws.next(5000, 'a pong after the drain')).payload.toString(), 'again');
});

test('a 1 MiB message sent as 1-byte fragments grows the server by about its payload, not ~100x', T, async (t) => {
  const SIZE = 1 * MiB;
  const s = await serve(t, ['--max-message-bytes', String(2 * SIZE), '--max-outgoing-bytes', String(4 * SIZE)]);
  const ws = await RawWs.open(t, s.port, '/raw');
  // Warm up the path (one small fragmented message) so the baseline holds the fixed costs.
  ws.send(OP.TEXT, 'w', { fin: false });
  ws.send(OP.CONT, 'arm');
  assert.equal((await ws.next(5000, 'the warm-up echo')).payload.toString(), 'warm');
  const m = watchMemory(s.proc.pid);

  // 1-byte frames (7 bytes on the wire each), 64 KiB of payload per write.
  const letter = (i) => 0x61 + (i % 26);
  const PER = 64 * 1024;
  for (let off = 0; off < SIZE - 1; off += PER) {
    const n = Math.min(PER, SIZE - 1 - off);
    const frames = Buffer.concat(Array.from({ length: n }, (_, k) =>
      frame(off + k === 0 ? OP.TEXT : OP.CONT, Buffer.from([letter(off + k)]), { fin: false })));
    if (!ws.sock.write(frames)) await withTimeout(new Promise((r) => ws.sock.once('drain', r)), 30_000, 'drain');
  }
  // A ping behind the fragments: its pong says the server has parsed all of them.
  ws.send(OP.PING, 'parsed');
  const pong = await ws.next(60_000, 'the pong behind the fragments');
  assert.equal(pong.opcode, OP.PONG);
  const peak = m.peak();
  t.diagnostic(`server RSS ${m.base} kB -> peak ${peak} kB while assembling ${SIZE} bytes of 1-byte fragments`);
  assert.ok(peak - m.base <= 8 * 1024, `RSS grew by ${peak - m.base} kB for a ${SIZE}-byte message`);

  // The last fragment: the message arrives whole.
  ws.send(OP.CONT, Buffer.from([letter(SIZE - 1)]));
  const echo = await ws.next(30_000, 'the echo of the assembled message');
  assert.equal(echo.opcode, OP.TEXT);
  assert.equal(echo.payload.length, SIZE);
  for (const i of [0, 1, 25, 26, SIZE / 2, SIZE - 1]) assert.equal(echo.payload[i], letter(i), `byte ${i}`);
});
