// spec/bench/deflate.mjs - permessage-deflate cost and gain (issue 16 point 8), with neffos.js
// under Node (its `ws` offers permessage-deflate unless told not to), against a running server
// of spec/bench/app.lua. Prints one JSON line: messages, server CPU per message, bytes on the wire
// per message (the clients' TCP bytes, WebSocket framing and compression included).
//
//   node spec/bench/deflate.mjs --url ws://127.0.0.1:PORT/echo --server-pid PID \
//        --mode ask|broadcast|idle --compression on|off [--seconds 5] [--conns 20] [--receivers 50] [--size 2048]
//
// ask: --conns clients, one ask of a --size-byte JSON body in flight each (both ways compressed).
// broadcast: one sender emits "shout" plain (body --size bytes of JSON), --receivers get "chat"; the
// sender keeps at most 16 broadcasts ahead of the slowest receiver. CPU per delivery.
// --rate N: at most N asks (broadcasts) a second. The Node clients inflate slower than they
// parse plain frames, so unpaced runs compare different rates (and the server's fixed cost per
// wake-up is spread over fewer messages): a rate both modes sustain gives comparable CPU figures.
// idle: --conns clients each connect v1 and ask once with a --size body (so that a server
// running --compression context keeps their inflate window), then stay idle: the server's
// resident memory per connection (VmRSS after, minus before, over the count).
import { readFileSync } from 'node:fs';
import neffos from 'neffos.js';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const url = args.url, pid = Number(args['server-pid']), mode = args.mode || 'ask';
const on = (args.compression || 'on') === 'on';
const seconds = Number(args.seconds || 5), size = Number(args.size || 2048);
const options = { perMessageDeflate: on };
const rate = Number(args.rate || 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Waits until the k-th event of a schedule of `perSec` events a second from t0 is due. */
const pace = async (t0, k, perSec) => { if (perSec > 0) { const due = t0 + (k * 1000) / perSec - Date.now(); if (due > 0) await sleep(due); } };

/** A JSON body of about n bytes, different per i (as real updates are). */
function body(n, i) {
  const items = [];
  for (let k = 0; JSON.stringify(items).length < n; k++)
    items.push({ id: i * 1000 + k, user: `user${(i + k) % 97}`, text: `message number ${k} of update ${i}`, ok: k % 3 === 0 });
  return JSON.stringify({ seq: i, items });
}

const cpuTicks = () => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);   // utime + stime (fields 14, 15)
};
const TICK_US = 1e6 / 100;   // USER_HZ
const wire = (conns) => conns.reduce((s, c) => s + c.conn._socket.bytesRead + c.conn._socket.bytesWritten, 0);

async function ask() {
  const n = Number(args.conns || 20);
  const conns = [], nss = [];
  for (let i = 0; i < n; i++) {
    const c = await neffos.dial(url, { v1: {} }, options);
    conns.push(c);
    nss.push(await c.connect('v1'));
  }
  const bodies = Array.from({ length: 64 }, (_, i) => body(size, i));
  const w0 = wire(conns), t0 = cpuTicks(), start = Date.now(), end = start + seconds * 1000;
  let msgs = 0, errors = 0;
  await Promise.all(nss.map(async (ns, k) => {
    for (let i = k, j = 0; Date.now() < end; i++, j++) {
      await pace(start + (k * 1000) / (rate || 1), j, rate / n);
      const b = bodies[i % bodies.length];
      const r = await ns.ask('echo', b);
      if (r.Body === b) msgs++; else errors++;
    }
  }));
  const cpu = (cpuTicks() - t0) * TICK_US, bytes = wire(conns) - w0;
  for (const c of conns) c.close();
  return { mode: 'ask', compression: on, conns: n, size, rate, msgs, errors,
    server_cpu_us_per_msg: +(cpu / msgs).toFixed(2), wire_bytes_per_msg: Math.round(bytes / msgs),
    msgs_per_s: Math.round(msgs / seconds) };
}

async function broadcast() {
  const n = Number(args.receivers || 50);
  let got = 0;
  const receivers = [];
  for (let i = 0; i < n; i++) {
    const c = await neffos.dial(url, { v1: { chat: () => { got++; } } }, options);
    await c.connect('v1');
    receivers.push(c);
  }
  // The sender sends plain: ws compresses in a thread pool and would spread a burst of emits
  // over many reads, which the plain run does not (the server's batching would differ).
  const sender = await neffos.dial(url, { v1: {} }, { perMessageDeflate: false });
  const ns = await sender.connect('v1');
  const bodies = Array.from({ length: 64 }, (_, i) => body(size, i));
  const w0 = wire(receivers), t0 = cpuTicks(), start = Date.now(), end = start + seconds * 1000;
  let sent = 0;
  while (Date.now() < end) {
    await pace(start, sent, rate);
    for (let k = 0; k < 16; k++) ns.emit('shout', bodies[sent++ % bodies.length]);
    const want = sent * n, until = Date.now() + 10_000;
    while (got < want && Date.now() < until) await new Promise((r) => setImmediate(r));
    if (got < want) break;
  }
  const cpu = (cpuTicks() - t0) * TICK_US, bytes = wire(receivers) - w0;
  for (const c of [...receivers, sender]) c.close();
  return { mode: 'broadcast', compression: on, receivers: n, size, rate, broadcasts: sent, deliveries: got,
    lost: sent * n - got, server_cpu_us_per_delivery: +(cpu / got).toFixed(2),
    wire_bytes_per_delivery: Math.round(bytes / got), deliveries_per_s: Math.round(got / seconds) };
}

const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

async function idle() {
  const n = Number(args.conns || 1000);
  const conns = [];
  const before = rssKb();
  for (let i = 0; i < n; i++) {
    const c = await neffos.dial(url, { v1: {} }, options);
    const ns = await c.connect('v1');
    await ns.ask('echo', body(size, i));
    conns.push(c);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKb();
  for (const c of conns) c.close();
  return { mode: 'idle', compression: on, conns: n, bytes_per_conn: Math.round((after - before) * 1024 / n) };
}

const result = mode === 'ask' ? await ask() : mode === 'idle' ? await idle() : await broadcast();
console.log(JSON.stringify(result));
process.exit(0);
