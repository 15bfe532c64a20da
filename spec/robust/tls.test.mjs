// Hostile and unlucky TLS clients (issue 16 points 2-4): garbage instead of a ClientHello,
// handshakes that stall (nothing, half a ClientHello, a ClientHello and then silence), a
// certificate renewed or broken while clients are connected (the file watcher and SIGHUP),
// and a reader slower than the server's TLS output. Each is answered without blocking the loop
// (a neffos.js client keeps being served), counted in /metrics, logged rate-limited.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import WebSocket from 'ws';
import { appPath, startServer, withTimeout, eventually, neffos } from '../interop/lib/server.mjs';
import { makeTestCA } from '../interop/lib/tls.mjs';
import { frame, closePayload, OP, RawWs } from './lib/raw.mjs';

const T = { timeout: 60_000 };
let ca, leaf;
before(() => {
  ca = makeTestCA();
  leaf = ca.issue('localhost');
});
after(() => ca?.cleanup());

async function serve(t, args) {
  const s = await startServer(appPath('events.lua'), { args: ['--no-watch', ...args] });
  t.after(() => s.stop());
  return s;
}

/** One /metrics series over https (trusting the test CA). */
async function metric(s, name) {
  const body = await withTimeout(new Promise((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port: s.port, ca: ca.ca }, () => c.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
    let out = '';
    c.setEncoding('utf8').on('data', (d) => { out += d; });
    c.on('end', () => resolve(out));
    c.on('error', reject);
  }), 5000, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** The refusal lines of `reason` in the log and how many refusals they account for. */
function accounted(s, reason) {
  const lines = s.logs().split('\n').filter((l) => l.includes(`refused ${reason}`));
  let n = 0;
  for (const l of lines) {
    if (/refused \w+ from /.test(l)) n += 1;
    const more = / (\d+) more (?:\w+ )?refusals not logged/.exec(l);
    if (more) n += Number(more[1]);
  }
  return { lines, n };
}

/** Writes `bytes` on a raw TCP connection and resolves {ms} once the server closes it. */
function sendAndWaitClose(port, bytes, ms = 8000) {
  return withTimeout(new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ host: '127.0.0.1', port }, () => { if (bytes.length) s.write(bytes); });
    s.on('data', () => {});   // an alert, maybe
    s.on('error', () => {});  // a reset is a close too
    s.on('close', () => resolve({ ms: Date.now() - t0 }));
  }), ms, `the server closing a connection that sent ${bytes.length} bytes`);
}

/** The first flight of a real TLS client (Node's ClientHello), captured on a local socket. */
function captureClientHello() {
  return withTimeout(new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      sock.once('data', (d) => { resolve(d); sock.destroy(); srv.close(); });
    }).listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: srv.address().port, rejectUnauthorized: false });
      c.on('error', () => {});
    });
  }), 5000, 'a ClientHello');
}

/** A neffos.js client over wss:// that keeps asking; returns {stop(): number of answers}. */
async function busyClient(s) {
  const conn = await withTimeout(neffos.dial(`wss://127.0.0.1:${s.port}/echo`, { default: {} }, { ca: ca.ca }), 5000, 'dial');
  const ns = await conn.connect('default');
  let n = 0, running = true;
  const loop = (async () => {
    while (running) {
      assert.equal((await withTimeout(ns.ask('echo', `n${n}`), 5000, 'an ask meanwhile')).Body, `echo back: n${n}`);
      n++;
    }
  })();
  return { async stop() { running = false; await loop; conn.close(); return n; } };
}

test('garbage instead of a ClientHello: closed at once, each counted, logged at most once a second', T, async (t) => {
  const s = await serve(t, ['--tls-cert', leaf.cert, '--tls-key', leaf.key]);
  const client = await busyClient(s);
  const garbage = [
    Buffer.from('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),                  // plain HTTP on the TLS port
    Buffer.alloc(300, 'x'),                                                           // not a TLS record at all
    Buffer.from([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]), // a broken ClientHello
    Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),                         // an alert instead
  ];
  const N = 40;
  const t0 = Date.now();
  for (let i = 0; i < N; i += 8) {
    await Promise.all(Array.from({ length: 8 }, (_, k) => sendAndWaitClose(s.port, garbage[(i + k) % garbage.length])));
  }
  assert.equal(await metric(s, 'neffos_refusals_total{reason="tls_handshake"}'), N, 'every failed handshake counted');
  assert.equal(await metric(s, 'neffos_refusals_total{reason="handshake_timeout"}'), 0);
  // Rate-limited: the lines (with their "N more not logged") still account for every refusal.
  await eventually(() => accounted(s, 'tls_handshake').n === N, `${N} refusals accounted for in the log`, 5000);
  const { lines } = accounted(s, 'tls_handshake');
  const seconds = Math.ceil((Date.now() - t0) / 1000);   // a refusal line and a "more" line per second at most
  assert.ok(lines.length <= 2 * seconds + 1 && lines.length < N, `at most about one line a second, got ${lines.length} in ${seconds} s:\n${lines.join('\n')}`);
  assert.match(lines[0], /refused tls_handshake from 127\.0\.0\.1:\d+: TLS handshake failed: \w/);
  assert.ok(await client.stop() > 0, 'the loop kept serving the neffos.js client');
  s.assertAlive();
});

test('a stalled handshake (nothing, half a ClientHello, no Finished) is timed out like a slowloris', T, async (t) => {
  const s = await serve(t, ['--tls-cert', leaf.cert, '--tls-key', leaf.key, '--handshake-timeout-ms', '700']);
  const client = await busyClient(s);
  const hello = await captureClientHello();
  assert.equal(hello[0], 0x16, 'a handshake record');
  const stalls = await Promise.all([
    sendAndWaitClose(s.port, Buffer.alloc(0)),
    sendAndWaitClose(s.port, hello.subarray(0, 20)),
    sendAndWaitClose(s.port, hello),   // the server's flight goes unanswered
  ]);
  for (const { ms } of stalls) assert.ok(ms >= 600, `closed by the timeout, not before (${ms} ms)`);
  assert.equal(await metric(s, 'neffos_refusals_total{reason="handshake_timeout"}'), 3);
  assert.equal(await metric(s, 'neffos_refusals_total{reason="tls_handshake"}'), 0, 'a timeout is not a failed handshake');
  await eventually(() => accounted(s, 'handshake_timeout').n === 3, 'the timeouts accounted for in the log');
  assert.match(accounted(s, 'handshake_timeout').lines[0], /handshake timeout \(TLS handshake not finished\)/);
  assert.ok(await client.stop() > 0, 'served while the stalled handshakes waited');
  s.assertAlive();
});

/** The CN of the certificate a new TLS connection gets. */
function servedCN(port) {
  return withTimeout(new Promise((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port, ca: ca.ca }, () => {
      resolve(c.getPeerCertificate().subject.CN);
      c.end();
    });
    c.on('error', reject);
  }), 5000, 'a TLS handshake');
}

test('the certificate reloads when its file changes and on SIGHUP; connections stay; a bad one leaves the old serving', T, async (t) => {
  const live = path.join(ca.dir, 'live');     // the followed directory (certbot's live/, a secret's mount)
  const stage = path.join(ca.dir, 'stage');   // where new files are written before being renamed in
  mkdirSync(live);
  mkdirSync(stage);
  const pem = path.join(live, 'tls.pem');     // chain and key in one file: each update is one rename
  const put = (content) => {
    writeFileSync(path.join(stage, 'next.pem'), content);
    renameSync(path.join(stage, 'next.pem'), pem);
  };
  const bundle = (name) => {
    const { cert, key } = ca.issue(name);
    return Buffer.concat([readFileSync(cert), readFileSync(key)]);
  };
  put(bundle('alpha'));
  const s = await serve(t, ['--tls-cert', pem]);
  assert.equal(await servedCN(s.port), 'alpha');
  const conn = await withTimeout(neffos.dial(`wss://127.0.0.1:${s.port}/echo`, { default: {} }, { ca: ca.ca }), 5000, 'dial');
  t.after(() => conn.close());
  const ns = await conn.connect('default');
  const alive = async (what) => assert.equal((await withTimeout(ns.ask('echo', what), 5000, what)).Body, `echo back: ${what}`);
  await alive('before');

  // A renewal: the watcher reloads; new connections get the new certificate, the open one stays.
  put(bundle('beta'));
  await eventually(async () => await metric(s, 'neffos_tls_reloads_total{result="ok"}') >= 1, 'the reload after the change');
  assert.equal(await servedCN(s.port), 'beta');
  await eventually(() => /tls: certificate reloaded from .*tls\.pem \(valid until \d{4}-/.test(s.logs()), 'the reload logged');   // stderr may come after /metrics
  await alive('after the renewal');

  // A broken file: logged, counted, the old certificate keeps serving.
  put('-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
  await eventually(async () => await metric(s, 'neffos_tls_reloads_total{result="failed"}') >= 1, 'the failed reload');
  await eventually(() => /tls: the new certificate was not loaded, the old one keeps serving: /.test(s.logs()), 'the failed reload logged');   // stderr may come after /metrics
  assert.equal(await servedCN(s.port), 'beta');
  await alive('after the bad file');

  // SIGHUP reloads too (a file system without inotify, a manual renewal).
  const okBefore = await metric(s, 'neffos_tls_reloads_total{result="ok"}');
  writeFileSync(pem, bundle('gamma'));
  await eventually(async () => await metric(s, 'neffos_tls_reloads_total{result="ok"}') > okBefore, 'the watcher saw gamma');
  const okNow = await metric(s, 'neffos_tls_reloads_total{result="ok"}');
  s.proc.kill('SIGHUP');
  await eventually(async () => await metric(s, 'neffos_tls_reloads_total{result="ok"}') >= okNow + 1, 'the SIGHUP reload');
  await eventually(() => /SIGHUP: reloading the TLS certificate/.test(s.logs()), 'the SIGHUP logged');   // stderr may come after /metrics
  assert.equal(await servedCN(s.port), 'gamma');
  await alive('after SIGHUP');
  assert.equal(await metric(s, 'neffos_connections'), 1, 'the connection made with alpha is still open');
  s.assertAlive();
});

/** A TCP proxy to 127.0.0.1:port whose server-to-client direction can stop: the server's socket
 *  then fills (a Node TLS client paused in JS still reads the socket: this one does not). */
async function pausableProxy(t, port) {
  const pairs = [];
  const srv = net.createServer((down) => {
    const up = net.connect({ host: '127.0.0.1', port });
    down.pipe(up);
    up.pipe(down);
    for (const s of [up, down]) s.on('error', () => { up.destroy(); down.destroy(); });
    pairs.push({ up, down });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => { for (const { up, down } of pairs) { up.destroy(); down.destroy(); } srv.close(); });
  return {
    port: srv.address().port,
    pause() { for (const { up, down } of pairs) { up.unpipe(down); up.pause(); } },
    resume() { for (const { up, down } of pairs) up.pipe(down); },
  };
}

test('a slow reader over TLS gets every byte in order (the socket full: the refused record offered again)', T, async (t) => {
  const s = await serve(t, ['--tls-cert', leaf.cert, '--tls-key', leaf.key]);
  const proxy = await pausableProxy(t, s.port);
  const ws = new WebSocket(`wss://127.0.0.1:${proxy.port}/echo`, { ca: ca.ca, maxPayload: 0 });
  t.after(() => ws.terminate());
  const frames = [];
  let got;
  ws.on('message', (d) => { frames.push(d.toString()); got?.(); });
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 5000, 'open');
  const next = () => withTimeout(new Promise((resolve) => {
    if (frames.length) return resolve(frames.shift());
    got = () => { got = null; resolve(frames.shift()); };
  }), 20_000, 'a frame');
  ws.send('M');
  assert.match(await next(), /^A/);
  ws.send('$0;default;;_OnNamespaceConnect;0;0;');
  assert.equal(await next(), '$0;;;;;;');
  // 16 replies of ~700 KB (11 MB: more than the kernel holds for a reader that stops, the
  // server's send buffer at most 4 MB here; less than --max-outgoing-bytes) while nothing is read.
  proxy.pause();
  const bodies = Array.from({ length: 16 }, (_, i) => `${i}:`.padEnd(700_000, String.fromCharCode(97 + i)));
  for (const [i, b] of bodies.entries()) ws.send(`$${i + 1};default;;echo;0;0;${b}`);
  await eventually(async () => (await metric(s, 'neffos_messages_out_total')) >= 16, 'the 16 replies queued', 20_000);
  proxy.resume();
  for (const [i, b] of bodies.entries()) {
    const f = await next();
    assert.ok(f === `$${i + 1};default;;echo;0;0;echo back: ${b}`, `reply ${i} intact and in order (${f.length} bytes: ${f.slice(0, 40)})`);
  }

  // Small replies one at a time: each flush is the server's own SSL_write (the TLS transport's
  // writev), so the socket fills in the middle of a record, and the next flush must offer it again.
  proxy.pause();
  const small = Array.from({ length: 320 }, (_, i) => `${i}:`.padEnd(20_000 + i, String.fromCharCode(65 + (i % 26))));
  const out0 = await metric(s, 'neffos_messages_out_total');
  for (const [i, b] of small.entries()) {
    ws.send(`$s${i};default;;echo;0;0;${b}`);
    if (i % 8 === 7) await new Promise((r) => setTimeout(r, 2));
  }
  await eventually(async () => (await metric(s, 'neffos_messages_out_total')) >= out0 + small.length, 'the small replies queued', 20_000);
  proxy.resume();
  for (const [i, b] of small.entries()) {
    const f = await next();
    assert.ok(f === `$s${i};default;;echo;0;0;echo back: ${b}`, `small reply ${i} intact and in order (${f.length} bytes: ${f.slice(0, 40)})`);
  }
  s.assertAlive();
});

test('frames sent with the upgrade request over TLS are read (decrypted by the bufferevent before the upgrade), then a burst of records whole', T, async (t) => {
  const s = await serve(t, ['--tls-cert', leaf.cert, '--tls-key', leaf.key]);
  const sock = tls.connect({ host: '127.0.0.1', port: s.port, ca: ca.ca });
  t.after(() => sock.destroy());
  await withTimeout(new Promise((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); }), 5000, 'TLS handshake');
  // One write, one TLS record: the bufferevent decrypts the request and the two frames behind
  // it together; the frames must reach the WebSocket, which reads the SSL itself from then on.
  const { ws, head } = await RawWs.upgrade(t, sock, {
    port: s.port, path: '/echo', after: Buffer.concat([frame(OP.TEXT, 'M'), frame(OP.TEXT, '$0;default;;_OnNamespaceConnect;0;0;')]),
  });
  assert.match(head, /^HTTP\/1\.1 101 /);
  const next = async (what) => {   // the next data frame; pings (the server's barrier) answered
    for (;;) {
      const f = await ws.next(10_000, what);
      if (f.opcode !== OP.PING) return f;
      ws.send(OP.PONG, f.payload);
    }
  };
  assert.match((await next('"A"')).payload.toString(), /^A/);
  assert.equal((await next('the connect reply')).payload.toString(), '$0;;;;;;');
  // 200 messages of ~3 KB, each its own write (records of odd sizes, so the server's reads end
  // inside records and OpenSSL keeps the rest), then 200 in one write (16 KiB records): every one
  // answered, in order.
  const bodies = Array.from({ length: 400 }, (_, i) => `${i}:`.padEnd(3000 + (i % 200) * 7, String.fromCharCode(97 + (i % 26))));
  for (const [i, b] of bodies.slice(0, 200).entries()) ws.send(OP.TEXT, `$${i + 1};default;;echo;0;0;${b}`);
  ws.write(...bodies.slice(200).map((b, i) => frame(OP.TEXT, `$${i + 201};default;;echo;0;0;${b}`)));
  for (const [i, b] of bodies.entries()) {
    const f = await next(`reply ${i}`);
    assert.ok(f.payload.toString() === `$${i + 1};default;;echo;0;0;echo back: ${b}`, `reply ${i} intact and in order`);
  }
  ws.send(OP.CLOSE, closePayload(1000));
  assert.equal((await ws.closeFrame(5000)).code, 1000);
  s.assertAlive();
});
