// --workers N with TLS and permessage-deflate together (issues 15 and 16): worker 1's TLS
// listener hands each accepted socket to the least loaded worker with its certificate, the
// adopting worker makes the handshake on its own loop; neffos.js over wss:// lands on every
// worker, negotiates permessage-deflate, and a broadcast from one worker reaches the clients of
// the other compressed, once per worker, over TLS. The process's one certificate reloads once
// on SIGHUP for every worker, and /metrics shows its lines once. A test CA made with `openssl`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { T, ROOT, serveFor, freePort, rawHttp, metricOf, eventually, sleep } from '../interop/lib/server.mjs';
import { connectAs, askBody } from '../interop/lib/parity.mjs';
import { makeTestCA } from '../interop/lib/tls.mjs';

const APP = path.join(ROOT, 'spec', 'workers', 'apps', 'workers.lua');
const WORKERS = Math.max(2, Number(process.env.NEFFOS_WORKERS || 2));
const json = (n) => JSON.stringify({ items: Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}`, ok: true })) });
const wsOf = (c) => c.conn.conn;   // the `ws` WebSocket under neffos.js

let ca, served;
before(() => {
  ca = makeTestCA();
  const leaf = ca.issue('first');
  // The files the server reads; overwritten by the renewal below.
  served = { cert: path.join(ca.dir, 'serve.pem'), key: path.join(ca.dir, 'serve.key') };
  copyFileSync(leaf.cert, served.cert);
  copyFileSync(leaf.key, served.key);
});
after(() => ca?.cleanup());

/** n neffos.js clients over wss:// (trusting the test CA), with the worker each one is on. */
async function clients(t, url, prefix, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}-${i}`;
    const c = await connectAs(t, url, name, { ns: 'w', events: ['all'], options: { ca: ca.ca } });
    c.name = name;
    c.worker = Number((await askBody(c.ns, 'worker')).split('/')[0]);
    out.push(c);
  }
  return out;
}

test('neffos.js over wss:// on every worker: a cross-worker broadcast arrives compressed, once per worker; the certificate reloads once for all', T, async (t) => {
  const tlsPort = await freePort();
  // The plain --listen of the harness serves /metrics; the clients use --listen-tls.
  const s = await serveFor(t, APP, ['--workers', String(WORKERS), '--listen-tls', `127.0.0.1:${tlsPort}`,
    '--tls-cert', served.cert, '--tls-key', served.key]);
  const url = `wss://127.0.0.1:${tlsPort}/echo`;
  const cs = await clients(t, url, 'tz', 2 * WORKERS);
  for (const c of cs) {
    assert.ok(wsOf(c)._socket.encrypted, `${c.name} speaks TLS`);
    assert.equal(wsOf(c)._socket.getPeerCertificate().subject.CN, 'first');
    assert.equal(wsOf(c).extensions, 'permessage-deflate', `${c.name} compresses`);
  }
  const on = new Set(cs.map((c) => c.worker));
  assert.equal(on.size, WORKERS, `TLS connections on every worker: ${cs.map((c) => c.worker)}`);

  // A broadcast of 16 KB of JSON from a client of one worker: every client, on every worker,
  // gets it whole; each worker compresses it once for its receivers (one window size here).
  const a = cs[0], b = cs.find((c) => c.worker !== a.worker);
  const body = json(300);
  const out0 = await metricOf(s, 'neffos_deflate_messages_total{dir="out"}');
  const read0 = wsOf(b)._socket.bytesRead;
  assert.equal(await askBody(a.ns, 'all', body), 'ok');
  for (const c of cs) assert.deepEqual((await c.rec.count('all', 1)).map((m) => m.body), [body], c.name);
  const read = wsOf(b)._socket.bytesRead - read0;
  assert.ok(read < body.length / 2, `the other worker's client read ${read} bytes for ${body.length}: compressed`);
  await eventually(async () => await metricOf(s, 'neffos_deflate_messages_total{dir="out"}') - out0 === WORKERS,
    'compressed once per worker');
  await sleep(100);
  assert.equal(await metricOf(s, 'neffos_deflate_messages_total{dir="out"}') - out0, WORKERS, 'not once per receiver');

  // /metrics: the process's one certificate, its lines once.
  const text = (await rawHttp(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')).body;
  assert.equal(text.split('\n').filter((l) => l.startsWith('neffos_tls_certificate_expiry_seconds ')).length, 1, text);

  // A renewal and SIGHUP: reloaded once for the process; new clients on every worker get the
  // new certificate, the connected ones stay.
  const renewed = ca.issue('renewed');
  copyFileSync(renewed.cert, served.cert);
  copyFileSync(renewed.key, served.key);
  const ok0 = await metricOf(s, 'neffos_tls_reloads_total{result="ok"}');
  s.proc.kill('SIGHUP');
  await eventually(async () => await metricOf(s, 'neffos_tls_reloads_total{result="ok"}') > ok0, 'the SIGHUP reload');
  const more = await clients(t, url, 'tr', 2 * WORKERS);
  assert.equal(new Set(more.map((c) => c.worker)).size, WORKERS, 'renewed handshakes on every worker');
  for (const c of more) assert.equal(wsOf(c)._socket.getPeerCertificate().subject.CN, 'renewed', c.name);
  assert.equal(await askBody(b.ns, 'all', body), 'ok');
  for (const c of [...cs, ...more]) await c.rec.count('all', c.name.startsWith('tz') ? 2 : 1);
});
