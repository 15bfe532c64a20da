// /metrics with --workers N sums every worker's figures, and waited for every worker: one worker in a
// long handler (its loop not turning) held up the whole process's /metrics, so a Prometheus scrape
// timed out just when it was needed. Now the worker that answers waits 1 s at most and marks who is
// missing: neffos_worker_up{worker="i"} 0, no neffos_worker_connections{worker="i"} line (README,
// "Workers"). Worker 1 listens, so the held worker is another one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { T, ROOT, serveFor, RawClient, eventually, rawHttp } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'workers', 'apps', 'crossing.lua');
const FLAGS = ['--workers', '2', '--lua-instruction-limit', '0', '--watchdog-warn-ms', '0'];

/** A raw client named `name` in namespace w, with the worker serving it. */
async function rawClient(t, s, name) {
  const c = await RawClient.connect(t, s.url(), { headers: { 'X-Username': name } });
  assert.equal(await c.ask('$0;w;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  c.worker = Number((await c.ask('$1;w;;worker;0;0;')).split(';').pop());
  return c;
}

/** /metrics as series -> value (throws unless it answered 200 within ms). */
async function scrape(port, ms) {
  const r = await rawHttp(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', ms);
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const m = new Map();
  for (const l of r.body.split('\n')) {
    if (!l || l.startsWith('#')) continue;
    const i = l.lastIndexOf(' ');
    m.set(l.slice(0, i), Number(l.slice(i + 1)));
  }
  return m;
}

test('/metrics answers within its deadline while a worker is busy, and marks that worker', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  let held, releaser;   // held: on worker 2 (worker 1 listens and must turn); releaser: on worker 1
  for (let i = 0; i < 12 && !(held && releaser); i++) {
    const r = await rawClient(t, s, `r${i}`);
    if (!held && r.worker === 2) held = r;
    else if (!releaser && r.worker === 1) releaser = r;
  }
  assert.ok(held && releaser, 'a client on each worker');
  const whole = await scrape(s.port, 5000);   // both replied: worker 2's last figures are these
  held.sendText('$5;w;;hold;0;0;');
  await eventually(async () => (await releaser.ask('$6;w;;holding;0;0;')) === '$6;w;;holding;0;0;true', 'worker 2 holds');
  let got;
  try {
    // The listener hands each socket to the worker with the fewest: of three at once, one at least
    // goes to worker 1 (the sockets differ by one at most). Those on worker 2 wait for it.
    got = await Promise.any([0, 1, 2].map(() => scrape(s.port, 5000)));
  } finally {
    assert.equal(await releaser.ask('$7;w;;release;0;0;', 10000), '$7;w;;release;0;0;true');
  }
  assert.equal(whole.get('neffos_worker_up{worker="2"}'), 1, 'both replied before');
  assert.equal(got.get('neffos_worker_up{worker="1"}'), 1, 'worker 1 replied');
  assert.equal(got.get('neffos_worker_up{worker="2"}'), 0, 'worker 2 is marked missing');
  assert.ok(got.has('neffos_worker_connections{worker="1"}'));
  assert.ok(!got.has('neffos_worker_connections{worker="2"}'), 'no figure for the missing worker');
  assert.ok(got.has('neffos_worker_sockets{worker="2"}'), 'the listener\'s count is known without it');
  // Worker 2's last figures stand in for it: no counter of the process goes back.
  assert.ok(got.get('neffos_http_requests_total') >= whole.get('neffos_http_requests_total'), 'counters do not go back');
  assert.equal(got.get('neffos_connections'), whole.get('neffos_connections'), 'worker 2\'s clients counted');
  assert.equal(await held.nextText(10000, 'held'), '$5;w;;hold;0;0;held');
  // Whole again once worker 2 turns its loop.
  await eventually(async () => {
    const m = await scrape(s.port, 5000);
    return m.get('neffos_worker_up{worker="2"}') === 1 && m.get('neffos_worker_connections{worker="2"}') >= 1;
  }, 'worker 2 back in /metrics', 10000);
  assert.match(s.logs(), /\/metrics answered without 1 worker\(s\) that did not reply within 1000 ms/);
});
