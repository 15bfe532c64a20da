// The command line (issue 2 point 2): --help, --version, --check, clear one-line errors with exit 2
// for a bad flag, a missing APP, an unknown log level and a port in use, --endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { T, BIN, ROOT, appPath, startServer, dial, rawHttp, withTimeout, sleep, cpuSeconds } from './lib/server.mjs';

const run = (...args) => spawnSync(BIN, args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000 });

test('--help and --version', T, () => {
  const h = run('--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^usage: neffos \[options\] APP/m);
  for (const flag of ['--listen', '--endpoint', '--check', '--log-level', '--static', '--max-message-bytes', '--redis', '--nats'])
    assert.ok(h.stdout.includes(flag), `--help mentions ${flag}`);
  const v = run('--version');
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^neffos \d+\.\d+\.\d+/);
});

test('bad usage is one clear line and exit 2', T, () => {
  const cases = [
    [['--bogus', 'examples/echo'], /unknown option '--bogus'/],
    [[], /missing APP/],
    [['spec/no/such/app'], /spec\/no\/such\/app: No such file or directory/],
    [['--log-level', 'loud', 'examples/echo'], /unknown log level 'loud'/],
    [['--listen', 'nonsense', 'examples/echo'], /listen|HOST:PORT/i],
    [['--busy-poll-us', '2000000', 'examples/echo'], /--busy-poll-us wants a number of microseconds/],
    [['--busy-poll-us', ' 5', 'examples/echo'], /--busy-poll-us wants a number of microseconds/],
    [['--max-connections', '+5', 'examples/echo'], /--max-connections wants a number \(0 to \d+\), got '\+5'/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
  }
});

test('--check: ok for a good app, file:line and exit 1 for broken ones, nothing served', T, () => {
  const good = run('--check', 'examples/echo');
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /examples\/echo: ok/);
  const syntax = run('--check', 'spec/lua/fixtures/syntax');
  assert.equal(syntax.status, 1);
  assert.match(syntax.stderr, /spec\/lua\/fixtures\/syntax\/app\.lua:\d+: /);
  const field = run('--check', 'spec/lua/fixtures/badfield');
  assert.equal(field.status, 1);
  assert.match(field.stderr, /app\.lua:\d+: neffos\.server: unknown field/);
  const runtime = run('--check', 'spec/lua/fixtures/runtime');
  assert.equal(runtime.status, 1);
  assert.match(runtime.stderr, /app\.lua:\d+: /);
});

test('a port in use: exit 2 with "address already in use"', T, async () => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address();
  try {
    const r = run('--listen', `127.0.0.1:${port}`, 'examples/echo');
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}: address already in use`));
  } finally {
    blocker.close();
  }
});

test('--endpoint sets the WebSocket path of an app that declares none', T, async (t) => {
  const srv = await startServer(appPath('no_endpoint.lua'), { args: ['--endpoint', '/elsewhere', '--no-watch'], endpoint: '/elsewhere' });
  t.after(() => srv.stop());
  const conn = await dial(t, srv.url('/elsewhere'), { v1: {} });
  const ns = await withTimeout(conn.connect('v1'), 3000, 'connect');
  assert.equal((await withTimeout(ns.ask('echo', 'here'), 3000, 'ask')).Body, 'here');
  const r = await rawHttp(srv.port, 'GET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(r.status, 404, 'the default path is not served');
});

// --busy-poll-us (README, Operations, "Latency"): after input the loop keeps polling for the window,
// then sleeps. Counted in CPU time, in ticks of 10 ms: a 400 ms window after an ask burns a good part
// of a core (the bound allows for a machine busy with other work); long after it, the server is back
// to sleeping (its sweep every 250 ms costs next to nothing). Without the spin the first check fails,
// without the end of the window the second.
test('--busy-poll-us: the loop spins after input for that long, then sleeps', T, async (t) => {
  const srv = await startServer(path.join(ROOT, 'examples', 'echo'), { args: ['--busy-poll-us', '400000', '--no-watch'] });
  t.after(() => srv.stop());
  const conn = await dial(t, srv.url('/echo'), { v1: {} });
  const ns = await withTimeout(conn.connect('v1'), 3000, 'connect');
  await sleep(600);   // the connect's window is over
  assert.equal((await withTimeout(ns.ask('echo', 'spin'), 3000, 'ask')).Body, 'echo back: spin');
  const cpu0 = cpuSeconds(srv.proc.pid);
  await sleep(300);   // inside the 400 ms window that the ask opened
  const spun = cpuSeconds(srv.proc.pid) - cpu0;
  assert.ok(spun >= 0.05, `the loop polled after the ask: ${spun} s of CPU in 300 ms`);
  await sleep(400);   // the window is over
  const cpu1 = cpuSeconds(srv.proc.pid);
  await sleep(600);
  const slept = cpuSeconds(srv.proc.pid) - cpu1;
  assert.ok(slept <= 0.05, `the loop sleeps once the window is over: ${slept} s of CPU in 600 ms`);
  // what the spin cost, in /metrics: the polling that found no input (most of the window)
  const m = await rawHttp(srv.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const idle = Number(/^neffos_busy_poll_idle_seconds_total ([\d.]+)$/m.exec(m.body)?.[1]);
  assert.ok(idle >= 0.05 && idle <= 5, `neffos_busy_poll_idle_seconds_total ${idle}`);
});
