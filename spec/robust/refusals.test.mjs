// Refused upgrades are logged at info with the reason and the remote address (an origin
// refusal with the origin), at most one line per reason per second: a flood of refusals
// cannot flood the log, and the lines still account for every refusal (README, Operations:
// Logs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { ROOT, startServer, rawHttp, withTimeout, eventually, serveFor, WORKERS } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'hostile.lua');
const T = { timeout: 60_000 };

const serve = (t, args = [], opts = {}) => serveFor(t, APP, args, opts);

const upgrade = (extra = '') => 'GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** Sends `request` and resolves with the status of the answer (the server closes after it). */
async function status(port, request) {
  return (await rawHttp(port, request, 5000)).status;
}

/** The refusal lines of `reason` in the log, and how many refusals they account for. */
function accounted(s, reason) {
  const lines = s.logs().split('\n').filter((l) => / info  refused /.test(l) && l.includes(`refused ${reason}`));
  let n = 0;
  for (const l of lines) {
    const more = / (\d+) more (?:\w+ )?refusals not logged/.exec(l);
    if (/refused \w+ from /.test(l)) n += 1;
    if (more) n += Number(more[1]);
  }
  return { lines, n };
}

test('an origin refusal is logged at info with the origin and the remote address', T, async (t) => {
  const s = await serve(t, ['--allowed-origins', 'http://good.example']);
  assert.equal(await status(s.port, upgrade('Origin: http://evil.example\r\n')), 403);
  await eventually(() => accounted(s, 'origin').n === 1, 'the refusal logged');
  const [line] = accounted(s, 'origin').lines;
  assert.match(line, /info  refused origin from 127\.0\.0\.1:\d+: origin http:\/\/evil\.example not allowed/);
});

test('floods of refusals: at most one line per reason per second, every refusal accounted for', T, async (t) => {
  const s = await serve(t, ['--allowed-origins', 'http://good.example', '--max-connections-per-ip', '40']);
  const N = 120;
  const start = Date.now();
  for (let i = 0; i < N; i += 10) {   // 30 at once: under the per-address limit
    const batch = [];
    for (let j = 0; j < 10; j++) {
      batch.push(status(s.port, upgrade('Origin: http://evil.example\r\n')).then((st) => assert.equal(st, 403)));
      batch.push(status(s.port, upgrade('Sec-WebSocket-Version: 13\r\n')).then((st) => assert.equal(st, 400)));
      batch.push(status(s.port, 'GET / HTTP/1.1\r\nBad Header: x\r\n\r\n').then((st) => assert.equal(st, 400)));
    }
    await Promise.all(batch);
  }
  // Per-address limit: 40 sockets held open, then more that are refused at accept.
  const held = [];
  for (let i = 0; i < 40; i++) {
    held.push(await withTimeout(new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: s.port }, () => resolve(sock));
      sock.on('error', reject);
    }), 5000, 'a held socket'));
  }
  t.after(() => held.forEach((h) => h.destroy()));
  const closed = [];
  for (let i = 0; i < N; i++) {
    closed.push(withTimeout(new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port: s.port });
      sock.on('error', () => {});
      sock.on('close', resolve);
    }), 10_000, 'a refused socket closing'));
  }
  await Promise.all(closed);

  // Within a second of the last refusal the sweep logs what was left out.
  for (const reason of ['origin', 'bad_request', 'limit'])
    await eventually(() => accounted(s, reason).n === (reason === 'bad_request' ? 2 * N : N),
      `every ${reason} refusal accounted for (${accounted(s, reason).n})`, 10_000);
  const seconds = (Date.now() - start) / 1000;
  for (const reason of ['origin', 'bad_request', 'limit']) {
    const { lines } = accounted(s, reason);
    // One line per second at most, plus the sweep's summary: within [elapsed + 2], per worker (each
    // worker limits its own lines: README, "Workers").
    assert.ok(lines.length <= WORKERS * (Math.ceil(seconds) + 2), `${lines.length} ${reason} lines in ${seconds} s:\n${lines.join('\n')}`);
  }
});
