// TLS on the listener (issue 16 points 1 and 4): --tls-cert/--tls-key serve wss:// and https://
// (static files, /health, /metrics), --listen-tls beside a plain --listen, TLS 1.2 and 1.3 with
// forward-secret AEAD ciphers only, --tls-min-version. The clients are the real ones: neffos.js
// under Node, trusting a CA this file makes with `openssl` (lib/tls.mjs), Node's https and tls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { T, BIN, ROOT, appPath, startServer, freePort, withTimeout, eventually, neffos } from './lib/server.mjs';
import { makeTestCA } from './lib/tls.mjs';

let ca, leaf, servers = [];
before(() => {
  ca = makeTestCA();
  leaf = ca.issue('localhost');
});
after(async () => {
  for (const s of servers) await s.stop();
  ca?.cleanup();
});

async function serve(args) {
  const s = await startServer(appPath('events.lua'), { args: ['--no-watch', ...args] });
  servers.push(s);
  return s;
}

/** GET over https trusting the test CA: {status, body, protocol}. */
function httpsGet(port, p, opts = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, ca: ca.ca, agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, protocol: res.socket.getProtocol?.() }));
    });
    req.on('error', reject);
  }), 5000, `GET https://127.0.0.1:${port}${p}`);
}

/** A TLS handshake with the test CA trusted: resolves {protocol, cipher, cn}, rejects with the error. */
function handshake(port, opts = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: ca.ca, ...opts }, () => {
      const r = { protocol: s.getProtocol(), cipher: s.getCipher().name, cn: s.getPeerCertificate().subject.CN };
      s.end();
      resolve(r);
    });
    s.on('error', reject);
  }), 5000, 'TLS handshake');
}

async function dialWss(url, options = {}) {
  const conn = await withTimeout(neffos.dial(url, { default: {} }, { ca: ca.ca, ...options }), 5000, `dial ${url}`);
  return conn;
}

function metric(body, name) {
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

test('neffos.js over wss:// (the server verified against the test CA); /health, /metrics and static files over https://', T, async () => {
  const www = path.join(ca.dir, 'www');
  mkdirSync(www);
  writeFileSync(path.join(www, 'index.html'), '<h1>over TLS</h1>\n');
  // A static file of 3 MB: far more than the socket takes at once, written through the TLS transport
  // in the HTTP phase (records cut from the file's bytes, the refused one offered again).
  let large = '';
  while (large.length < 3_000_000) large += `${large.length},`;
  writeFileSync(path.join(www, 'large.txt'), large);
  const s = await serve(['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--static', www]);
  // The line is written once listening: the harness may see the port open first.
  await eventually(() => /listening on https 127\.0\.0\.1:\d+/.test(s.logs()), 'the listening line (https)');

  const conn = await dialWss(`wss://127.0.0.1:${s.port}/echo`);
  const ns = await conn.connect('default');
  assert.equal((await ns.ask('echo', 'over wss')).Body, 'echo back: over wss');
  let big = '';
  while (big.length < 200_000) big += `${big.length};`;
  assert.equal((await ns.ask('echo', big)).Body, `echo back: ${big}`, 'a reply of many TLS records');
  conn.close();

  assert.deepEqual(await httpsGet(s.port, '/health').then((r) => [r.status, r.body]), [200, 'ok\n']);
  const m = await httpsGet(s.port, '/metrics');
  assert.equal(m.status, 200);
  assert.ok(metric(m.body, 'neffos_upgrades_total') >= 1);
  assert.ok(metric(m.body, 'neffos_tls_certificate_expiry_seconds') > Date.now() / 1000, 'the expiry is in the future');
  assert.equal(metric(m.body, 'neffos_tls_reloads_total{result="ok"}'), 0);
  const page = await httpsGet(s.port, '/index.html');
  assert.deepEqual([page.status, page.body], [200, '<h1>over TLS</h1>\n']);
  const file = await httpsGet(s.port, '/large.txt');
  assert.ok(file.status === 200 && file.body === large, `the 3 MB file whole (${file.status}, ${file.body.length} bytes)`);

  // The certificate is checked for real: a client without the CA refuses it.
  await assert.rejects(withTimeout(neffos.dial(`wss://127.0.0.1:${s.port}/echo`, { default: {} }), 5000, 'dial without CA'),
    (e) => /self[- ]signed|unable to (get|verify)|certificate/i.test(String(e?.message ?? e?.code ?? e)));
  s.assertAlive();
});

test('--listen and --listen-tls at once: one server, the same endpoints and metrics, ws:// and wss://', T, async () => {
  const tlsPort = await freePort();
  const s = await serve(['--listen-tls', `127.0.0.1:${tlsPort}`, '--tls-cert', leaf.cert, '--tls-key', leaf.key]);
  const both = new RegExp(`listening on http 127\\.0\\.0\\.1:${s.port} and https 127\\.0\\.0\\.1:${tlsPort}`);
  await eventually(() => both.test(s.logs()), 'the listening line (http and https)');
  const plain = await withTimeout(neffos.dial(`ws://127.0.0.1:${s.port}/echo`, { default: {} }), 5000, 'dial ws://');
  const secure = await dialWss(`wss://127.0.0.1:${tlsPort}/echo`);
  const [a, b] = [await plain.connect('default'), await secure.connect('default')];
  assert.equal((await a.ask('echo', 'plain')).Body, 'echo back: plain');
  assert.equal((await b.ask('echo', 'secure')).Body, 'echo back: secure');
  const m = await httpsGet(tlsPort, '/metrics');
  assert.equal(metric(m.body, 'neffos_connections'), 2, 'both listeners feed one host');
  const h = await fetch(`http://127.0.0.1:${s.port}/health`);
  assert.equal(h.status, 200);
  plain.close();
  secure.close();
  // The plain port does not speak TLS, the TLS port does not speak plain HTTP.
  await assert.rejects(handshake(s.port));
  await assert.rejects(fetch(`http://127.0.0.1:${tlsPort}/health`));
});

test('TLS 1.3 and 1.2 with forward-secret AEAD ciphers; weak ciphers refused; --tls-min-version 1.3 refuses 1.2', T, async () => {
  const s = await serve(['--tls-cert', leaf.cert, '--tls-key', leaf.key]);
  assert.equal((await handshake(s.port)).protocol, 'TLSv1.3');
  const v12 = await handshake(s.port, { maxVersion: 'TLSv1.2' });
  assert.equal(v12.protocol, 'TLSv1.2');
  assert.match(v12.cipher, /^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
  assert.equal(v12.cn, 'localhost');
  // No forward secrecy (RSA key exchange) or no AEAD (CBC): no shared cipher.
  for (const ciphers of ['AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES128-SHA256']) {
    await assert.rejects(handshake(s.port, { maxVersion: 'TLSv1.2', ciphers }), undefined, ciphers);
  }
  await assert.rejects(handshake(s.port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), undefined, 'TLS 1.0/1.1');

  const s13 = await serve(['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--tls-min-version', '1.3']);
  assert.equal((await handshake(s13.port)).protocol, 'TLSv1.3');
  await assert.rejects(handshake(s13.port, { maxVersion: 'TLSv1.2' }), undefined, 'TLS 1.2 with --tls-min-version 1.3');
  const m = await httpsGet(s13.port, '/metrics');
  assert.equal(metric(m.body, 'neffos_refusals_total{reason="tls_handshake"}'), 1, 'the refused handshake is counted');
});

test('bad TLS flags and files: a clear one-line error and exit 2, before listening', T, () => {
  const run = (...args) => spawnSync(BIN, [...args, '--listen', '127.0.0.1:0', appPath('events.lua')],
    { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
  const bad = path.join(ca.dir, 'not-a-cert.pem');
  writeFileSync(bad, 'hello\n');
  const other = ca.issue('other');
  for (const [args, want] of [
    [['--listen-tls', '127.0.0.1:0'], /--listen-tls and --tls-key need --tls-cert/],
    [['--tls-key', leaf.key], /need --tls-cert/],
    [['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--tls-min-version', '1.1'], /--tls-min-version wants 1\.2 or 1\.3/],
    [['--tls-cert', path.join(ca.dir, 'missing.pem'), '--tls-key', leaf.key], /TLS: .*missing\.pem: /],
    [['--tls-cert', bad, '--tls-key', leaf.key], /TLS: .*not-a-cert\.pem: /],
    [['--tls-cert', leaf.cert, '--tls-key', other.key], /TLS: .*other\.key: key values mismatch/],
    [['--tls-cert', leaf.cert], /TLS: .*localhost\.pem: /],   // no key in the certificate file
  ]) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
  }
});
