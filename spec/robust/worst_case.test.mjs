// The worst-case memory of one connection with the default flags (issue 11 point 5) is what the
// README's Operations section claims ("worst case per connection ≈ N MiB"): this test reads that
// figure from the README and holds the server to it. One raw TCP connection pushes every
// per-connection bound at once, with the server on its default limits:
//   - names: 64 namespaces and as many rooms as --max-name-bytes-per-conn lets it hold (short
//     names: the most index entries for the bytes);
//   - pending asks: --max-pending-asks server asks it never answers;
//   - parked input: a handler that sleeps, and --max-incoming-bytes of 1 MiB frames behind it;
//   - assembly: a message of --max-message-bytes minus one byte, as 1-byte fragments, no FIN;
//   - output: it never reads, and floods pings until --max-outgoing-bytes of pongs are queued.
// The server's RSS growth (VmHWM) must stay under the figure (times ASan's overhead on the test
// build), and the connection must then be dropped as a slow reader (1008, one limit hit, no
// other), the server going on serving others. Loops are bounded in bytes and time; waits are on
// events (the server's answers, /metrics, the end of TCP).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { BIN, ROOT, rawHttp, startServer, withTimeout, eventually } from '../interop/lib/server.mjs';
import { RawWs, frame, OP } from './lib/raw.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'worst_case.lua');
const MiB = 1024 * 1024;
const T = { timeout: 240_000 };
// ASan holds freed memory back in a quarantine: off, or it would count as growth.
const ENV = { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0` };
// ASan's own cost on top of what the server allocates: a shadow byte per 8 bytes touched (1/8),
// a redzone and a header per allocation, size classes rounded up. Measured on this test: the
// Debug/ASan build grows about 1.3x the Release build; 1.5 leaves room without hiding a fault.
const ASAN_FACTOR = 1.5;

/** The defaults the attack is sized from (host/core/nf_limits.h, the one place they live). */
function defaults() {
  const src = readFileSync(path.join(ROOT, 'host', 'core', 'nf_limits.h'), 'utf8');
  const get = (name) => {
    const m = new RegExp(`\\.${name}\\s*=\\s*(\\d+)u?\\s*(?:<<\\s*(\\d+))?`).exec(src);
    assert.ok(m, `.${name} in nf_limits.h`);
    return Number(m[1]) * 2 ** Number(m[2] || 0);
  };
  return Object.fromEntries(['max_message_bytes', 'max_outgoing_bytes', 'max_incoming_queue', 'max_incoming_bytes',
    'max_namespaces_per_conn', 'max_rooms_per_conn', 'max_pending_asks', 'max_name_bytes_per_conn']
    .map((n) => [n, get(n)]));
}

/** The README's claim, in KiB. */
function documentedKiB() {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /worst case per connection ≈ ([\d.]+) MiB/.exec(readme);
  assert.ok(m, 'README.md states "worst case per connection ≈ N MiB"');
  return Number(m[1]) * 1024;
}

function mem(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(st)[1]);
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

async function metrics(port) {
  const r = await rawHttp(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  const out = {};
  for (const l of r.body.split('\n')) {
    const m = /^(neffos_\S+) (\d+)/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

const text = (s) => frame(OP.TEXT, Buffer.from(s, 'latin1'));

/** The next data frame; pings (the server's barrier after a connect or join reply,
 *  docs/architecture.md) are answered on the way, as a client does. */
async function nextData(ws, ms, what) {
  for (let i = 0; i < 1000; i++) {
    const f = await ws.next(ms, what);
    if (f.opcode !== OP.PING) return f;
    ws.send(OP.PONG, f.payload);
  }
  throw new Error(`1000 pings and no data frame while waiting for ${what}`);
}

/** Writes `buf`, waiting for the socket to drain (or the connection to end). */
async function put(ws, buf) {
  if (!ws.sock.write(buf)) await Promise.race([new Promise((r) => ws.sock.once('drain', r)), ws.end]);
}

test('one connection at every per-connection bound at once stays under the README\'s "worst case per connection" and is then dropped as a slow reader', T, async (t) => {
  const L = defaults();
  const asan = readFileSync(BIN).includes('__asan_init');
  const limitKiB = documentedKiB() * (asan ? ASAN_FACTOR : 1);
  const s = await startServer(APP, { args: ['--no-watch', '--log-level', 'warn'], env: ENV });
  t.after(() => s.stop());
  const pid = s.proc.pid;
  // Warm up what every connection shares (the Lua state's first runs, the pools): one connection
  // that does a little of everything, then leaves.
  {
    const w = await RawWs.open(t, s.port, '/echo');
    w.write(text('M'), text('$1;n01;;_OnNamespaceConnect;0;0;'), text('$2;n01;ab;_OnRoomJoin;0;0;'),
      text('$3;n01;;echo;0;0;hi'));
    for (let i = 0; i < 4; i++) await nextData(w, 10_000, `warm-up answer ${i}`);
    w.destroy();
    await eventually(async () => (await metrics(s.port)).neffos_connections === 0, 'the warm-up connection gone', 10_000);
  }
  const base = mem(pid);
  let maxRss = base.rss;
  const sampler = setInterval(() => { try { maxRss = Math.max(maxRss, mem(pid).rss); } catch { /* exited */ } }, 20);
  t.after(() => clearInterval(sampler));

  const ws = await RawWs.open(t, s.port, '/echo');
  ws.write(text('M'));
  assert.match((await nextData(ws, 10_000, 'the handshake')).payload.toString(), /^A/);

  // Names: 64 namespaces "nNN" and 2-byte rooms, as many as the byte bound per connection allows.
  const NS = L.max_namespaces_per_conn;
  const nsName = (i) => `n${String(i + 1).padStart(2, '0')}`;
  // Room names as short as they come (1-byte, then 2-byte): the most index entries for the bytes.
  const A = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!@%^&*()+=[]{}<>?/|:,';
  const short = [...A, ...[...A].flatMap((x) => [...A].map((y) => x + y))];
  const perNs = Math.floor((L.max_name_bytes_per_conn - NS * 3) / NS);
  const names = [];
  for (let used = 0; names.length < L.max_rooms_per_conn && used + short[names.length].length <= perNs;) {
    used += short[names.length].length;
    names.push(short[names.length]);
  }
  const rooms = names.length, roomName = (j) => names[j];
  const ops = [];
  for (let i = 0; i < NS; i++) ops.push(`;${nsName(i)};;_OnNamespaceConnect;0;0;`);
  for (let i = 0; i < NS; i++) for (let j = 0; j < rooms; j++) ops.push(`;${nsName(i)};${roomName(j)};_OnRoomJoin;0;0;`);
  for (let k = 0; k < ops.length; k += 512) {
    const batch = ops.slice(k, k + 512);
    await put(ws, Buffer.concat(batch.map((op, i) => text(`$${k + i}${op}`))));
    for (let i = 0; i < batch.length; i++) {
      const a = (await nextData(ws, 30_000, `answer ${k + i}`)).payload.toString();
      assert.equal(a, `$${k + i};;;;;;`, `${batch[i]} accepted`);
    }
  }
  const nameBytes = NS * 3 + NS * names.join('').length;
  const phase = (what) => t.diagnostic(`${what}: RSS +${mem(pid).rss - base.rss} kB`);
  phase(`names (${NS} namespaces, ${NS * rooms} rooms, ${nameBytes} bytes of names)`);

  // From now on the client never reads: everything the server sends stays queued there.
  ws.sock.pause();
  // Pending asks: the server asks this connection and never gets an answer.
  await put(ws, text(`$90001;n01;;ask_me;0;0;${L.max_pending_asks}`));
  await eventually(async () => (await metrics(s.port)).neffos_asks_sent_total >= L.max_pending_asks,
    `${L.max_pending_asks} server asks sent`, 60_000, 100);

  phase(`${L.max_pending_asks} pending asks`);
  // Parked input: a handler that sleeps holds the connection's turn; the frames behind it wait,
  // as many bytes as --max-incoming-bytes allows (48 bytes of bookkeeping counted per frame).
  await put(ws, text('$90002;n01;;nap;0;0;600'));
  const nParked = Math.min(L.max_incoming_queue, Math.floor(L.max_incoming_bytes / L.max_message_bytes));
  const size = Math.floor(L.max_incoming_bytes / nParked) - 48 - 64;
  for (let i = 0; i < nParked; i++) {
    const head = `$${90003 + i};n01;;echo;0;0;`;
    await put(ws, text(head + 'x'.repeat(size - head.length)));
  }
  await eventually(async () => (await metrics(s.port)).neffos_messages_in_total >= 2 + NS * (rooms + 1) + 1 + 2 + nParked,
    'the parked frames read', 60_000, 100);
  phase(`${nParked} frames of ${size} bytes parked`);
  // Assembly: --max-message-bytes minus one, as 1-byte fragments, the last one never sent.
  const letter = (i) => 0x61 + (i % 26);
  const MSG = L.max_message_bytes - 1;
  for (let off = 0; off < MSG; off += 64 * 1024) {
    const n = Math.min(64 * 1024, MSG - off);
    await put(ws, Buffer.concat(Array.from({ length: n }, (_, k) =>
      frame(off + k === 0 ? OP.TEXT : OP.CONT, Buffer.from([letter(off + k)]), { fin: false }))));
  }
  // Output: pings it never reads the pongs of, until the server drops it (bounded: 4x the bound).
  const pings = Buffer.concat(Array.from({ length: 1024 }, () => frame(OP.PING, Buffer.alloc(125, 0x70))));
  let sent = 0;
  const CAP = 4 * L.max_outgoing_bytes;
  await withTimeout((async () => {
    while (sent < CAP && !ws.ended) { sent += pings.length; await put(ws, pings); }
  })(), 120_000, 'the ping flood');
  await withTimeout(ws.end, 60_000, `the server dropping the connection (${sent} bytes of pings sent)`);
  clearInterval(sampler);

  const now = mem(pid);
  const peak = now.hwm > base.hwm ? now.hwm : Math.max(maxRss, now.rss);
  const grew = peak - base.rss;
  t.diagnostic(`${asan ? 'ASan' : 'Release'} build: RSS ${base.rss} kB -> peak ${peak} kB: grew ${grew} kB ` +
    `(${(grew / 1024).toFixed(1)} MiB); documented ${(documentedKiB() / 1024).toFixed(1)} MiB` +
    `${asan ? ` x ${ASAN_FACTOR} (ASan) = ${(limitKiB / 1024).toFixed(1)} MiB` : ''}; ${(sent / MiB).toFixed(1)} MiB of pings sent`);
  assert.ok(sent < CAP, 'dropped before the whole flood was sent');

  // Dropped as documented: a slow reader, and no other bound was the one hit.
  const m = await metrics(s.port);
  assert.equal(m['neffos_limit_hits_total{limit="outgoing_queue"}'], 1, 'one slow-reader drop');
  for (const [k, v] of Object.entries(m)) {
    if (k.startsWith('neffos_limit_hits_total') && !k.includes('"outgoing_queue"')) assert.equal(v, 0, k);
  }
  assert.match(s.logs(), /limit hit: outgoing queue full \(slow reader\), closing with 1008/);
  assert.ok(grew <= limitKiB, `RSS grew by ${grew} kB; the README says ${documentedKiB()} kB per connection` +
    (asan ? ` (x ${ASAN_FACTOR} for ASan: ${limitKiB} kB)` : ''));

  // The server goes on: a new client is answered.
  const ok = await RawWs.open(t, s.port, '/echo');
  ok.write(text('M'), text('$1;n01;;_OnNamespaceConnect;0;0;'), text('$2;n01;;echo;0;0;still here'));
  for (let i = 0; i < 2; i++) await nextData(ok, 10_000, 'handshake and connect');
  assert.equal((await nextData(ok, 10_000, 'the echo')).payload.toString(), '$2;n01;;echo;0;0;still here');
  s.assertAlive();
});
