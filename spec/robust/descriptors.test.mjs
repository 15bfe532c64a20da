// Running out of file descriptors: the server runs under RLIMIT_NOFILE 64 (prlimit) with a
// --max-connections far above it, and a client opens more sockets than it has descriptors. accept()
// fails with EMFILE; the server must pause accepting instead of retrying in a loop: the connections it
// has keep being served, its CPU stays low, the log gets a line per interval (not one per try), and
// once the hogs go, new connections (/health) are served again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT, RawClient, rawHttp, startServer, withTimeout, sleep, eventually, rawIn, cpuSeconds } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'hostile.lua');
const NOFILE = 64;
const HOGS = 150;            // far more sockets than descriptors
const EPISODE_MS = 2000;     // how long the server is kept out of descriptors
const CPU_BOUND_S = 0.5;     // a server retrying accept() in a loop burns ~EPISODE_MS of CPU
const T = { timeout: 90_000 };
/** Opens a TCP connection that sends nothing; resolves once connected (the kernel completes the
 *  handshake for the backlog too, so this does not need the server to accept). */
function hog() {
  return withTimeout(new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: hog.port }, () => resolve(s));
    s.on('error', reject);
  }), 5000, 'a hog connection');
}

const v1 = (t, s) => rawIn(t, s, 'v1');

const acceptLines = (s) => s.logs().split('\n').filter((l) => /accept: /.test(l));

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

test('out of descriptors: accepting pauses, open connections are served, CPU and log stay small', T, async (t) => {
  const s = await startServer(APP, {
    args: ['--no-watch', '--max-connections', '1000'],
    wrapper: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'],
  });
  t.after(() => s.stop());
  await eventually(() => /--max-connections 1000 is above what RLIMIT_NOFILE 64 allows/.test(s.logs()),
    'a startup warning about --max-connections above the descriptor budget');

  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await v1(t, s));

  hog.port = s.port;
  const hogs = [];
  t.after(() => { for (const h of hogs) h.destroy(); });
  for (let i = 0; i < HOGS; i++) hogs.push(await hog());
  await eventually(() => acceptLines(s).length > 0, 'the server reporting accept() failing', 5000);

  const cpu0 = cpuSeconds(s.proc.pid);
  const end = Date.now() + EPISODE_MS;
  let asks = 0;
  while (Date.now() < end) {
    for (const [i, c] of clients.entries()) {
      const body = `during ${asks}-${i}`;
      assert.equal(await c.ask(`$${asks};v1;;echo;0;0;${body}`, 5000), `$${asks};v1;;echo;0;0;${body}`);
    }
    asks++;
    await sleep(100);
  }
  const cpu = cpuSeconds(s.proc.pid) - cpu0;
  s.assertAlive();
  assert.ok(asks >= 5, `the open connections were served during the episode (${asks} rounds of asks)`);
  assert.ok(cpu < CPU_BOUND_S, `server CPU during ${EPISODE_MS} ms out of descriptors: ${cpu.toFixed(2)} s`);
  const lines = acceptLines(s);
  assert.ok(lines.length <= 10, `accept() failures logged per interval, not per try: ${lines.length} lines\n` +
    lines.slice(0, 5).join('\n'));
  assert.match(lines[0], /Too many open files/);

  for (const h of hogs.splice(0)) h.destroy();
  const health = await eventually(async () => {
    try {
      const r = await rawHttp(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', 1500);
      return r.status === 200 ? r : null;
    } catch { return null; }
  }, '/health answered once the hogs are gone', 10_000, 100);
  assert.equal(health.body, 'ok\n');
  const m = (await rawHttp(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')).body;
  assert.ok(metric(m, 'neffos_accept_errors_total{reason="emfile"}') >= 1);
  assert.equal(metric(m, 'neffos_accept_paused'), 0);
  for (const c of clients) assert.equal(await c.ask('$99;v1;;echo;0;0;after'), '$99;v1;;echo;0;0;after');
});

test('the default --max-connections follows RLIMIT_NOFILE, and is logged at start', T, async (t) => {
  const s = await startServer(APP, { args: ['--no-watch'], wrapper: ['prlimit', `--nofile=${NOFILE}:${NOFILE}`, '--'] });
  t.after(() => s.stop());
  // min(100000, max(64/2, 64 - 64 - 64/10)) = 32 (host/base/fdlimit.h)
  await eventually(() => / listening on /.test(s.logs()), 'the startup lines');
  assert.match(s.logs(), /descriptors: RLIMIT_NOFILE 64; --max-connections 32\b/);
  assert.doesNotMatch(s.logs(), /is above what RLIMIT_NOFILE/);
});

test('the soft RLIMIT_NOFILE is raised to the hard one at start', T, async (t) => {
  const s = await startServer(APP, { args: ['--no-watch'], wrapper: ['prlimit', '--nofile=64:1024', '--'] });
  t.after(() => s.stop());
  await eventually(() => / listening on /.test(s.logs()), 'the startup lines');
  assert.match(s.logs(), /descriptors: RLIMIT_NOFILE raised from 64 to 1024; --max-connections 858\b/);
  const limits = readFileSync(`/proc/${s.proc.pid}/limits`, 'utf8');
  assert.match(limits, /Max open files\s+1024\s+1024/);
});
