// Hostile clients: every limit hit on purpose, with small limits on the command line, and the
// server shown to go on serving everyone else. Each test starts its own server (the flags differ)
// and stops it; every loop is bounded in count and time.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, RawClient, rawHttp, startServer, withTimeout, sleep, eventually, canConnect, serveFor, rawIn } from '../interop/lib/server.mjs';
import { RawWs, OP } from './lib/raw.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'hostile.lua');
const T = { timeout: 60_000 };

const serve = (t, args = [], opts = {}) => serveFor(t, APP, args, opts);

const v1 = (t, s) => rawIn(t, s, 'v1');

async function echoWorks(t, s, what) {
  const c = await v1(t, s);
  assert.equal(await c.ask(`$1;v1;;echo;0;0;${what}`), `$1;v1;;echo;0;0;${what}`);
  c.close();
}

async function metrics(s) {
  const r = await rawHttp(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(r.status, 200);
  return r.body;
}

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

const upgradeHead = (extra = '') => 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** Resolves with the ms until the server ends a TCP connection (bounded by `ms`). */
function timeUntilClosed(sock, ms) {
  const start = Date.now();
  return withTimeout(new Promise((resolve) => {
    sock.on('close', () => resolve(Date.now() - start));
    sock.on('error', () => {});
  }), ms, 'the server closing the connection');
}

/** A TCP connection that does the upgrade; resolves with 'open' (101), 'closed' (TCP ended
 *  without an answer) or the HTTP status line. */
function tryUpgrade(port, ms = 3000) {
  return withTimeout(new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(upgradeHead()));
    let head = '';
    sock.on('data', (d) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) resolve({ result: head.startsWith('HTTP/1.1 101') ? 'open' : head.split('\r\n')[0], sock });
    });
    sock.on('error', () => {});
    sock.on('close', () => resolve({ result: 'closed', sock }));
  }), ms, 'an upgrade attempt');
}

function vmRssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// ---- HTTP phase ---------------------------------------------------------------------------------

test('a request head over --max-header-bytes is answered 431 and closed', T, async (t) => {
  const s = await serve(t, ['--max-header-bytes', '1024']);
  const r = await rawHttp(s.port, upgradeHead(`X-Big: ${'a'.repeat(1100)}\r\n`));
  assert.equal(r.status, 431);
  const ok = await tryUpgrade(s.port);
  assert.equal(ok.result, 'open', 'a normal request still upgrades');
  ok.sock.destroy();
});

test('a head that never ends is answered 431 once it passes --max-header-bytes (no buffering without end)', T, async (t) => {
  const s = await serve(t, ['--max-header-bytes', '2048']);
  const r = await rawHttp(s.port, `GET /echo HTTP/1.1\r\nX-Endless: ${'z'.repeat(64 * 1024)}`);
  assert.equal(r.status, 431);
});

test('more headers than --max-headers is answered 431', T, async (t) => {
  const s = await serve(t, ['--max-headers', '10']);
  const many = Array.from({ length: 11 }, (_, i) => `X-H${i}: v\r\n`).join('');
  assert.equal((await rawHttp(s.port, upgradeHead(many))).status, 431);
  await echoWorks(t, s, 'after 431');
});

test('slowloris: a head sent one byte per 300 ms is cut at --handshake-timeout-ms', T, async (t) => {
  const s = await serve(t, ['--handshake-timeout-ms', '1000']);
  const sock = net.connect({ host: '127.0.0.1', port: s.port });
  const closedIn = timeUntilClosed(sock, 6000);
  const head = upgradeHead();
  let i = 0;
  const drip = setInterval(() => { if (i < head.length && !sock.destroyed) sock.write(head[i++]); }, 300);
  t.after(() => { clearInterval(drip); sock.destroy(); });
  const ms = await closedIn;
  clearInterval(drip);
  assert.ok(ms >= 900 && ms < 2500, `closed after ${ms} ms (timeout 1000, sweep 250)`);
  assert.ok(i < head.length, 'the head was not complete');
  assert.ok(metric(await metrics(s), 'neffos_refusals_total{reason="handshake_timeout"}') >= 1);
});

test('an upgraded connection that never sends "M" is closed with 1008 at the handshake timeout', T, async (t) => {
  const s = await serve(t, ['--handshake-timeout-ms', '1000']);
  const c = await RawClient.open(t, s.url());
  const start = Date.now();
  const { code, reason } = await c.waitClose(4000);
  assert.equal(code, 1008);
  assert.match(reason, /handshake timeout/);
  assert.ok(Date.now() - start < 2500);
});

// ---- connection limits ----------------------------------------------------------------------------

test('--max-connections: the connection over the limit is refused; a slot freed is usable again', T, async (t) => {
  const s = await serve(t, ['--max-connections', '3']);
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await v1(t, s));
  const refused = await tryUpgrade(s.port);
  assert.notEqual(refused.result, 'open', 'the 4th connection is refused');
  refused.sock.destroy();
  clients[0].close();
  await clients[0].waitClose();
  const again = await eventually(async () => {
    const r = await tryUpgrade(s.port);
    if (r.result !== 'open') { r.sock.destroy(); return null; }
    return r;
  }, 'a new connection after one closed', 3000, 100);
  again.sock.destroy();
  // Its slot is free once the server saw it close (on the worker serving it, with --workers N,
  // not in the listener's turn): until then a /metrics request is over the limit too.
  const text = await eventually(() => metrics(s).catch(() => null), 'a /metrics answer once the slot is free', 3000, 50);
  assert.ok(metric(text, 'neffos_refusals_total{reason="limit"}') >= 1);
  for (const c of clients.slice(1)) assert.equal(await c.ask('$5;v1;;echo;0;0;kept'), '$5;v1;;echo;0;0;kept');
});

test('--max-connections-per-ip: the third connection from one address is refused', T, async (t) => {
  const s = await serve(t, ['--max-connections-per-ip', '2']);
  const a = await v1(t, s);
  const b = await v1(t, s);
  const third = await tryUpgrade(s.port);
  assert.notEqual(third.result, 'open');
  third.sock.destroy();
  assert.equal(await a.ask('$5;v1;;echo;0;0;a'), '$5;v1;;echo;0;0;a');
  assert.equal(await b.ask('$5;v1;;echo;0;0;b'), '$5;v1;;echo;0;0;b');
});

// ---- per-connection limits ---------------------------------------------------------------------------

test('--max-messages-per-sec: a flooding client is closed with 1008; others go on; counted in /metrics', T, async (t) => {
  const s = await serve(t, ['--max-messages-per-sec', '20']);
  const flooder = await v1(t, s);
  for (let i = 0; i < 100; i++) flooder.sendText(`;v1;;echo;0;0;${i}`);
  const { code, reason } = await flooder.waitClose(3000);
  assert.equal(code, 1008);
  assert.match(reason, /rate/);
  await echoWorks(t, s, 'after the flood');
  const m = await metrics(s);
  assert.ok(metric(m, 'neffos_limit_hits_total{limit="message_rate"}') >= 1);
  assert.ok(metric(m, 'neffos_messages_in_total') >= 20);
  assert.match(s.logs(), /limit hit: incoming message rate/);
});

test('--max-message-bytes: a message one byte over is closed with 1009', T, async (t) => {
  const s = await serve(t, ['--max-message-bytes', '1000']);
  const c = await v1(t, s);
  c.sendText(`;v1;;echo;0;0;${'x'.repeat(1000)}`);
  assert.equal((await c.waitClose(3000)).code, 1009);
  await echoWorks(t, s, 'after 1009');
});

test('--max-namespaces-per-conn and --max-rooms-per-conn: refused with an error reply, the connection stays', T, async (t) => {
  const s = await serve(t, ['--max-namespaces-per-conn', '1', '--max-rooms-per-conn', '2']);
  const c = await v1(t, s);
  assert.equal(await c.ask('$1;v2;;_OnNamespaceConnect;0;0;'), '$1;v2;;_OnNamespaceConnect;1;0;too many namespaces');
  assert.equal(await c.ask('$2;v1;room1;_OnRoomJoin;0;0;'), '$2;;;;;;');
  assert.equal(await c.ask('$3;v1;room2;_OnRoomJoin;0;0;'), '$3;;;;;;');
  assert.equal(await c.ask('$4;v1;room3;_OnRoomJoin;0;0;'), '$4;v1;room3;_OnRoomJoin;1;0;too many rooms');
  assert.equal(await c.ask('$5;v1;;echo;0;0;still open'), '$5;v1;;echo;0;0;still open');
  assert.ok(metric(await metrics(s), 'neffos_limit_hits_total{limit="rooms"}') >= 1);
  // Hit again and again: counted every time, logged once per connection and limit, with the reason.
  for (let i = 6; i < 10; i++)
    assert.equal(await c.ask(`$${i};v1;room${i};_OnRoomJoin;0;0;`), `$${i};v1;room${i};_OnRoomJoin;1;0;too many rooms`);
  assert.equal(metric(await metrics(s), 'neffos_limit_hits_total{limit="rooms"}'), 5);
  const logged = s.logs().split('\n').filter((l) => /limit hit: rooms per namespace connection/.test(l));
  assert.equal(logged.length, 1, logged.join('\n'));
  assert.equal(s.logs().split('\n').filter((l) => /limit hit: namespaces per connection/.test(l)).length, 1);
});

test('a client that never reads is closed with 1008 (outgoing queue full); the other got everything', T, async (t) => {
  const s = await serve(t, ['--max-outgoing-bytes', String(256 * 1024)]);
  // The slow one: a raw socket that stops reading once in the namespace.
  const slow = await RawWs.open(t, s.port, '/echo');
  slow.send(OP.TEXT, 'M');
  assert.match((await slow.next(3000, 'ack')).payload.toString(), /^A/);
  slow.send(OP.TEXT, '$0;v1;;_OnNamespaceConnect;0;0;');
  assert.equal((await slow.next(3000, 'connect reply')).payload.toString(), '$0;;;;;;');
  slow.sock.pause();

  // The reading one asks for bursts of 40 x 4 KiB (160 KiB, under the limit: one handler run
  // queues a whole burst at once) and reads each before asking again; 50 bursts = 8 MiB to
  // each member, far over the slow one's kernel buffers + 256 KiB.
  const fast = await v1(t, s);
  const BURSTS = 50, PER = 40, SIZE = 4096, N = BURSTS * PER;
  let got = 0;
  for (let b = 0; b < BURSTS; b++) {
    fast.sendText(`$${b};v1;;flood;0;0;${PER} ${SIZE}`);
    for (;;) {
      const f = await fast.nextText(10_000, `burst ${b}`);
      if (f.startsWith(';v1;;news;0;0;')) { assert.equal(f.length, 14 + SIZE); got++; continue; }
      assert.equal(f, `$${b};v1;;flood;0;0;sent ${PER}`);
      break;
    }
  }
  assert.equal(got, N, 'the reading client got every broadcast');

  // The slow one reads again: some news, then the close frame (or the end of TCP), never all of it.
  slow.sock.resume();
  let news = 0;
  let close = null;
  await withTimeout((async () => {
    for (;;) {
      let f;
      try { f = await slow.next(5000, 'slow frames'); } catch { return; }
      if (f.opcode === OP.CLOSE) { close = f; return; }
      news++;
    }
  })(), 15_000, 'the slow client draining');
  assert.ok(news < N, `the slow client was cut (${news} of ${N})`);
  if (close) {
    assert.equal(close.code, 1008);
    assert.match(close.reason, /outgoing queue full/);
  }
  await withTimeout(slow.end, 5000, 'the slow connection ending');
  assert.ok(metric(await metrics(s), 'neffos_limit_hits_total{limit="outgoing_queue"}') >= 1);
  assert.equal((s.logs().match(/outgoing queue full/g) || []).length, 1, 'logged once for the connection');
  await echoWorks(t, s, 'after the slow reader');
});

// ---- the Lua sandbox ------------------------------------------------------------------------------------

test('a handler in `while true do end` is aborted: its client gets an error, others are served', T, async (t) => {
  const s = await serve(t, ['--lua-instruction-limit', '5000000']);
  const c = await v1(t, s);
  const start = Date.now();
  const r = await c.ask('$1;v1;;spin;0;0;', 20_000);
  assert.match(r, /^\$1;v1;;spin;1;0;.+/, 'an error reply');
  assert.ok(Date.now() - start < 15_000);
  assert.equal(await c.ask('$2;v1;;echo;0;0;same client'), '$2;v1;;echo;0;0;same client');
  await echoWorks(t, s, 'another client');
  s.assertAlive();
});

test('a handler that allocates without end is aborted by the memory cap; the server goes on', T, async (t) => {
  const s = await serve(t, ['--lua-memory-limit-mb', '64', '--lua-instruction-limit', '0']);
  const c = await v1(t, s);
  const r = await c.ask('$1;v1;;hog;0;0;', 30_000);
  assert.match(r, /^\$1;v1;;hog;1;0;.+/, 'an error reply');
  assert.equal(await c.ask('$2;v1;;echo;0;0;same client'), '$2;v1;;echo;0;0;same client');
  await echoWorks(t, s, 'another client');
  s.assertAlive();
});

// ---- churn and memory -------------------------------------------------------------------------------------

test('churn: 1,000 clients connect and disconnect while others ask; RSS is flat after a second round', { timeout: 240_000 }, async (t) => {
  // A small ASan quarantine, so that freed memory held for use-after-free detection does not
  // look like growth (ignored by non-ASan builds).
  const asan = `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=8:detect_leaks=1`;
  const s = await serve(t, ['--log-level', 'warn'], { env: { ASAN_OPTIONS: asan } });
  const askers = [];
  for (let i = 0; i < 4; i++) askers.push(await v1(t, s));
  let asked = 0;
  let stop = false;
  const asking = askers.map(async (c, i) => {
    for (let k = 0; !stop && k < 100_000; k++) {
      assert.equal(await c.ask(`$${k};v1;;echo;0;0;q${i}-${k}`, 10_000), `$${k};v1;;echo;0;0;q${i}-${k}`);
      asked++;
    }
  });

  async function churnRound(total, concurrency, deadlineMs) {
    const end = Date.now() + deadlineMs;
    let done = 0;
    const worker = async () => {
      while (done < total && Date.now() < end) {
        done++;
        const c = await RawClient.connect(null, s.url());
        try {
          assert.equal(await c.ask('$0;v1;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
          assert.equal(await c.ask('$1;v1;;echo;0;0;churn'), '$1;v1;;echo;0;0;churn');
        } finally {
          if (done % 2) c.close(); else c.terminate();   // clean closes and abrupt drops
          await withTimeout(c.closed, 5000, 'churn client closing').catch(() => c.terminate());
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    assert.equal(done, total, `all ${total} churn clients ran within ${deadlineMs} ms`);
  }

  const settle = async () => {
    await eventually(async () => metric(await metrics(s), 'neffos_connections') === askers.length,
      'only the askers left', 10_000, 100);
    await sleep(300);
    return vmRssKb(s.proc.pid);
  };
  await churnRound(1000, 50, 90_000);   // warm-up: pools and caches reach their size
  const rss1 = await settle();
  await churnRound(1000, 50, 90_000);
  const rss2 = await settle();
  stop = true;
  await Promise.all(asking);
  t.diagnostic(`VmRSS after round 1: ${rss1} kB, after round 2: ${rss2} kB; ${asked} asks answered meanwhile`);
  assert.ok(asked > 0, 'the askers were answered during the churn');
  assert.ok(rss2 <= rss1 * 1.10 + 4096, `RSS grew from ${rss1} kB to ${rss2} kB`);
  const m = await metrics(s);
  assert.ok(metric(m, 'neffos_upgrades_total') >= 2000 + askers.length);
  assert.ok(metric(m, 'neffos_closed_total') >= 2000);
});

// ---- shutdown, health ------------------------------------------------------------------------------------

test('/health is 200 while serving; a draining process stops listening (no /health, no upgrade)', T, async (t) => {
  const s = await serve(t, ['--grace-ms', '5000']);
  const ok = await rawHttp(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(ok.status, 200);
  // A client that never answers the close keeps the server draining for a while.
  const stubborn = await RawWs.open(t, s.port, '/echo');
  stubborn.send(OP.TEXT, 'M');
  await stubborn.next(3000, 'ack');
  s.stopping = true;   // the exit is the test's, not a crash
  s.proc.kill('SIGTERM');
  const closeFrame = await stubborn.next(3000, 'the close frame');
  assert.equal(closeFrame.code, 1001);
  // Like Go's http.Server.Shutdown: the listener is closed at drain start, so the next
  // process can bind the port and probes are refused (spec/robust/reconnect.test.mjs).
  assert.equal(await canConnect(s.port), false, 'the port refuses while draining');
  assert.equal(s.exit, null, 'still draining');
  const exit = await withTimeout(s.exited, 7000, 'exit after the drain');
  assert.equal(exit.code, 0);
});

test('SIGTERM with clients connected: each sees 1001, the process exits 0 within the grace period', T, async (t) => {
  const s = await serve(t, ['--grace-ms', '3000']);
  const clients = [];
  for (let i = 0; i < 5; i++) clients.push(await v1(t, s));
  const napping = await v1(t, s);
  napping.sendText('$9;v1;;nap;0;0;0.3');   // a handler running when the signal comes
  await sleep(50);
  const start = Date.now();
  s.stopping = true;   // the exit is the test's, not a crash
  s.proc.kill('SIGTERM');
  const codes = await Promise.all([...clients, napping].map((c) => c.waitClose(4000).then((x) => x.code)));
  assert.deepEqual(codes, Array(6).fill(1001));
  const exit = await withTimeout(s.exited, 4500, 'exit within the grace period');
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.ok(Date.now() - start < 3500, 'within the grace period');
});

test('a second SIGINT exits at once, without waiting for the drain', T, async (t) => {
  const s = await serve(t, ['--grace-ms', '10000']);
  const stubborn = await RawWs.open(t, s.port, '/echo');   // never answers the close
  stubborn.send(OP.TEXT, 'M');
  await stubborn.next(3000, 'ack');
  const start = Date.now();
  s.stopping = true;
  s.proc.kill('SIGINT');
  await stubborn.next(3000, 'the close frame');
  s.proc.kill('SIGINT');
  const exit = await withTimeout(s.exited, 2000, 'exit after the second SIGINT');
  assert.equal(exit.signal, null, 'it exited by itself');
  assert.ok(Date.now() - start < 700, `exited ${Date.now() - start} ms after the first SIGINT`);
});

test('SIGTERM lets a running handler finish: its reply arrives, then 1001, then exit 0', T, async (t) => {
  const s = await serve(t, ['--grace-ms', '4000']);
  const idle = await v1(t, s);
  const napping = await v1(t, s);
  napping.sendText('$7;v1;;nap;0;0;0.8');
  await sleep(100);
  s.stopping = true;
  s.proc.kill('SIGTERM');
  // The idle connection goes at once; the napping one only after its answer.
  assert.equal((await idle.waitClose(2000)).code, 1001);
  assert.equal(await napping.nextText(3000, 'the nap reply'), '$7;v1;;nap;0;0;rested');
  assert.equal((await napping.waitClose(2000)).code, 1001);
  const exit = await withTimeout(s.exited, 4000, 'exit after the drain');
  assert.equal(exit.code, 0);
});

test('SIGTERM: a handler still running when the grace period ends loses its connection', T, async (t) => {
  const s = await serve(t, ['--grace-ms', '500']);
  const napping = await v1(t, s);
  napping.sendText('$8;v1;;nap;0;0;5');
  await sleep(100);
  s.stopping = true;
  s.proc.kill('SIGTERM');
  assert.equal((await napping.waitClose(2500)).code, 1001);
  const exit = await withTimeout(s.exited, 3000, 'exit at the end of the grace period');
  assert.equal(exit.code, 0);
});

test('--allowed-origins: listed origins upgrade, others get 403, requests without Origin pass', T, async (t) => {
  const s = await serve(t, ['--allowed-origins', 'http://good.example, http://also.example']);
  const upgrade = (origin) => rawHttp(s.port,
    `GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
    (origin ? `Origin: ${origin}\r\n` : '') + '\r\n', 1500);
  assert.equal((await upgrade('http://evil.example')).status, 403);
  assert.equal((await upgrade('http://good.example')).status, 101);
  assert.equal((await upgrade('http://also.example')).status, 101);
  assert.equal((await upgrade(null)).status, 101);
  assert.match((await rawHttp(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')).body, /neffos_refusals_total\{reason="origin"\} 1/);
});
