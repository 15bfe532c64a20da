// spec/bench/soak.mjs - the soak benchmark (issue 11 point 13), run by spec/bench/soak.sh.
// Legitimate neffos.js clients ask (closed loop) and receive broadcasts while hostile raw-socket
// clients cycle through every attack of issue 11, against one server in a prlimit'ed process.
// Reports: legit asks sent / answered and their p50 / p99, broadcasts delivered / lost, the
// server's peak RSS against the documented worst case (README "worst case per connection"),
// limit hits per limit from /metrics, and whether the server stayed up.
// A Markdown summary on stdout, the JSON last line. Exit 1 if a legit ask was lost or the server died.
//
// Environment: NEFFOS_BIN (build-release/neffos), SOAK_SECONDS (60), LEGIT (20), HOSTILE (4),
// NOFILE (512: the server's descriptor limit, below what the descriptor attack opens), SERVER_ARGS
// (more server flags, e.g. "--max-connections 100000" for accept() to meet EMFILE), ATTACKS (a comma list
// of attack names, default all: to find which one costs the legitimate clients what).

import net from 'node:net';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, BIN, startServer, rawHttp, withTimeout, neffos, sleep } from '../interop/lib/server.mjs';
import { RawWs, frame, OP } from '../robust/lib/raw.mjs';

const SECS = Number(process.env.SOAK_SECONDS || 60);
const LEGIT = Number(process.env.LEGIT || 20);
const HOSTILE = Number(process.env.HOSTILE || 4);
const NOFILE = Number(process.env.NOFILE || 512);
const MiB = 1024 * 1024;
const APP = path.join(ROOT, 'spec', 'bench', 'soak_app.lua');

const text = (s) => frame(OP.TEXT, Buffer.from(s, 'latin1'));
const mem = (pid) => {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(st)[1]);
};
async function metrics(port) {
  const r = await rawHttp(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', 5000);
  const out = {};
  for (const l of r.body.split('\n')) {
    const m = /^(neffos_\S+) (\d+)/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}
const documentedMiB = () => Number(/worst case per connection ≈ ([\d.]+) MiB/.exec(readFileSync(path.join(ROOT, 'README.md'), 'utf8'))[1]);

const server = await startServer(APP, {
  args: ['--no-watch', '--log-level', 'error', '--handshake-timeout-ms', '2000',
    ...(process.env.SERVER_ARGS || '').split(' ').filter(Boolean)],
  wrapper: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'],
});
const pid = server.proc.pid;
let stop = false;
let peakRss = 0, hostileNow = 0, hostilePeak = 0;
const sampler = setInterval(() => { try { peakRss = Math.max(peakRss, mem(pid)); } catch { /* exited */ } }, 50);

// ---- legitimate clients: a closed loop of asks each, one of them also broadcasts ----------------
const lat = [];
let asksSent = 0, asksAnswered = 0, askErrors = 0, shouts = 0, delivered = 0;
const legit = [];
for (let i = 0; i < LEGIT; i++) {
  const conn = await withTimeout(neffos.dial(server.url(), { v1: { chat: () => { delivered++; } } }), 10_000, 'legit dial');
  legit.push({ conn, ns: await withTimeout(conn.connect('v1'), 10_000, 'legit connect') });
}
await sleep(500);
const baseRss = mem(pid);
peakRss = baseRss;

async function asker(ns, k) {
  for (let n = 0; !stop; n++) {
    const body = `${k}:${n}`;
    const t0 = process.hrtime.bigint();
    asksSent++;
    try {
      const r = await withTimeout(ns.ask('echo', body), 30_000, 'legit ask');
      if (String(r.Body) !== body) throw new Error(`wrong answer ${String(r.Body).slice(0, 40)}`);
      asksAnswered++;
      lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    } catch (e) { if (askErrors++ < 3) process.stderr.write(`legit ask failed: ${e?.message ?? e}\n`); }
  }
}
async function shouter(ns) {
  while (!stop) {
    ns.emit('shout', `s${shouts}`);
    shouts++;
    await sleep(100);
  }
}

// ---- hostile clients: each cycles through the attacks -------------------------------------------
const attacksRun = {}, attacksUnfinished = {};
const hold = (ms) => sleep(ms);
async function untilEnd(ws, ms) { await Promise.race([ws.end, sleep(ms)]); ws.destroy(); }
async function pump(ws, buf, cap) {   // writes buf until the server drops us or cap bytes
  let sent = 0;
  while (!ws.ended && sent < cap && !stop) {
    sent += buf.length;
    if (!ws.sock.write(buf)) await Promise.race([new Promise((r) => ws.sock.once('drain', r)), ws.end, sleep(2000)]);
  }
}
async function nsConn(port) {
  const ws = await RawWs.open(null, port, '/echo');
  ws.write(text('M'), text('$0;v1;;_OnNamespaceConnect;0;0;'));
  return ws;
}
const ATTACKS = {
  async pingFlood(port) {     // never reads: pongs fill the output bound, dropped as a slow reader
    const ws = await nsConn(port);
    ws.sock.pause();
    await pump(ws, Buffer.concat(Array.from({ length: 1024 }, () => frame(OP.PING, Buffer.alloc(125, 0x70)))), 64 * MiB);
    await untilEnd(ws, 5000);
  },
  async parked(port) {        // 1 MB frames behind a sleeping handler: incoming bytes bound
    const ws = await nsConn(port);
    ws.write(text('$1;v1;;nap;0;0;30'));
    const big = text('$2;v1;;echo;0;0;' + 'x'.repeat(1_000_000));
    for (let i = 0; i < 6 && !ws.ended; i++) await pump(ws, big, big.length);
    await untilEnd(ws, 10_000);
  },
  async fragments(port) {     // a message past --max-message-bytes in 1-byte fragments: 1009
    const ws = await nsConn(port);
    const chunk = (first) => Buffer.concat(Array.from({ length: 64 * 1024 }, (_, k) =>
      frame(first && k === 0 ? OP.TEXT : OP.CONT, Buffer.from([0x61]), { fin: false })));
    await pump(ws, chunk(true), 64 * 1024 * 7);
    await pump(ws, chunk(false), 2 * MiB * 7);
    await untilEnd(ws, 5000);
  },
  async longNames(port) {     // names past --max-name-bytes, then rooms past the bytes per connection
    const ws = await nsConn(port);
    for (let i = 0; i < 100 && !ws.ended; i++) ws.write(text(`$${i + 1};v1;${String(i).padStart(300, 'r')};_OnRoomJoin;0;0;`));
    for (let i = 0; i < 200 && !ws.ended; i++) ws.write(text(`$${i + 200};v1;${String(i).padStart(250, 'q')};_OnRoomJoin;0;0;`));
    await hold(1000);
    ws.destroy();
  },
  async descriptors(port) {   // more sockets than the server's RLIMIT_NOFILE, held a moment
    const socks = [];
    for (let i = 0; i < NOFILE + 100 && !stop; i++) {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      socks.push(s);
    }
    await hold(1500);
    for (const s of socks) s.destroy();
  },
  async slowloris(port) {     // an HTTP head one byte at a time: dropped at --handshake-timeout-ms
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    const ended = new Promise((r) => { s.on('close', r); });
    const head = 'GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: ' + 'z'.repeat(200);
    for (let i = 0; i < head.length && !s.destroyed; i++) {
      s.write(head[i]);
      if (await Promise.race([ended.then(() => true), sleep(100).then(() => false)])) break;
    }
    s.destroy();
  },
  async pattern(port) {       // the key=value parser fed blanks: the pattern is metered, the handler fails
    const ws = await nsConn(port);
    for (let i = 0; i < 3; i++) ws.write(text(`$${i + 1};v1;;kv;0;0;${' '.repeat(20_000)}`));
    await Promise.race([ws.end, sleep(3000)]);
    ws.destroy();
  },
  async garbage(port) {       // text that is no neffos message (dropped), then bytes that are no frame: 1002
    const ws = await nsConn(port);
    ws.write(text('not;a;neffos;message'), text('\u0000\u0001'), text(';;;;;;;;;;'), frame(0x3, 'reserved opcode'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) & 0xff)));
    await untilEnd(ws, 5000);
  },
};
async function hostile(k) {
  const names = process.env.ATTACKS ? process.env.ATTACKS.split(',') : Object.keys(ATTACKS);
  for (let n = k; !stop; n++) {
    const name = names[n % names.length];
    attacksRun[name] = (attacksRun[name] || 0) + 1;
    hostileNow++;
    hostilePeak = Math.max(hostilePeak, hostileNow);
    try { await withTimeout(ATTACKS[name](server.port), 60_000, name); } catch (e) {
      attacksUnfinished[name] = (attacksUnfinished[name] || 0) + 1;
      process.stderr.write(`attack ${name}: ${e?.message ?? e}\n`);
    }
    hostileNow--;
  }
}

const t0 = Date.now();
const jobs = [
  ...legit.map((l, k) => asker(l.ns, k)),
  shouter(legit[0].ns),
  ...Array.from({ length: HOSTILE }, (_, k) => hostile(k)),
];
await sleep(SECS * 1000);
stop = true;
await withTimeout(Promise.all(jobs), 90_000, 'the clients finishing');
await sleep(1000);   // the last broadcasts in flight
clearInterval(sampler);
const elapsed = (Date.now() - t0) / 1000;

let up = !server.exit, health = 0, m = {};
// Up: /health answers 200 (a few tries: the last attack's sockets may still sit in the backlog).
for (let i = 0; i < 10 && health !== 200 && !server.exit; i++) {
  try {
    health = (await rawHttp(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', 3000)).status;
    m = await metrics(server.port);
  } catch (e) { process.stderr.write(`/health: ${e.message}\n`); await sleep(500); }
}
up = up && health === 200 && !server.exit;
for (const l of legit) l.conn.close();
try { await server.stop(); } catch (e) { up = false; process.stderr.write(`${e.message}\n`); }

lat.sort((a, b) => a - b);
const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] : 0);
const expected = shouts * (LEGIT - 1);
const perConn = documentedMiB();
const limitHits = Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('neffos_limit_hits_total'))
  .map(([k, v]) => [/limit="([^"]+)"/.exec(k)[1], v]));
const other = Object.fromEntries(Object.entries(m).filter(([k]) => /refusals_total|accept_errors_total|invalid_frames|handler_errors/.test(k)));
const r = {
  seconds: Math.round(elapsed), legit_conns: LEGIT, hostile_workers: HOSTILE, nofile: NOFILE,
  asks_sent: asksSent, asks_answered: asksAnswered, ask_errors: askErrors,
  p50_us: Math.round(pct(0.5)), p99_us: Math.round(pct(0.99)), p999_us: Math.round(pct(0.999)), max_us: Math.round(lat.length ? lat[lat.length - 1] : 0),
  broadcasts: shouts, deliveries: delivered, deliveries_expected: expected, deliveries_lost: expected - delivered,
  rss_base_kb: baseRss, rss_peak_kb: peakRss, hostile_conns_peak: hostilePeak, worst_case_per_conn_mib: perConn,
  rss_bound_kb: Math.round(baseRss + hostilePeak * perConn * 1024),
  attacks: attacksRun, attacks_unfinished: attacksUnfinished, limit_hits: limitHits, other, server_up: up,
  binary: path.relative(ROOT, BIN),
};
const fmt = (x) => x.toLocaleString('en-US');
console.log(`| soak, ${r.seconds} s, ${LEGIT} legit neffos.js clients, ${HOSTILE} hostile workers, server nofile ${NOFILE} | |
|---|---|
| legit asks sent / answered / failed | ${fmt(asksSent)} / ${fmt(asksAnswered)} / ${askErrors} |
| legit ask latency p50 / p99 / p99.9 / max | ${[r.p50_us, r.p99_us, r.p999_us, r.max_us].map((u) => (u / 1000).toFixed(2)).join(' / ')} ms |
| broadcasts: delivered / expected (lost) | ${fmt(delivered)} / ${fmt(expected)} (${expected - delivered}) |
| server RSS: base → peak | ${(baseRss / 1024).toFixed(1)} → ${(peakRss / 1024).toFixed(1)} MiB |
| documented bound: base + ${hostilePeak} hostile conns × ${perConn} MiB | ${(r.rss_bound_kb / 1024).toFixed(1)} MiB |
| attacks run (unfinished: refused or timed out) | ${Object.entries(attacksRun).map(([k, v]) => `${k} ${v}${attacksUnfinished[k] ? ` (${attacksUnfinished[k]})` : ''}`).join(', ')} |
| limit hits | ${Object.entries(limitHits).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ')} |
| other counters | ${Object.entries(other).filter(([, v]) => v).map(([k, v]) => `${k.replace('neffos_', '')} ${v}`).join(', ')} |
| server stayed up (/health 200, clean exit) | ${up ? 'yes' : 'NO'} |`);
console.log(JSON.stringify(r));
process.exit(up && asksSent === asksAnswered && asksSent > 0 ? 0 : 1);
