// Lingering close (host/core/linger.h): when the server closes a connection whose peer is
// still sending (the rest of an oversized message), it half-closes and discards the
// peer's last input instead of close(2) with unread input, which sends RST. With RST the
// peer may lose the close frame: neffos.js and `ws` then report 1006 instead of 1009
// (seen as a flaky interop/garbage). Asserted on the socket's events: the close frame,
// then a clean FIN, and no ECONNRESET / EPIPE on the client side.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, T, useServer, metricOf, withTimeout } from '../interop/lib/server.mjs';
import { RawWs, frame, OP, closePayload } from './lib/raw.mjs';

const MAX = 65536;
const srv = useServer(path.join(ROOT, 'spec', 'robust', 'apps', 'raw_echo.lua'), {
  args: ['--max-message-bytes', String(MAX), '--no-watch'],
  endpoint: '/raw',
});

async function oversizedThenClose(t, bytes) {
  const ws = await RawWs.open(t, srv.server.port, '/raw');
  const errors = [];
  ws.sock.on('error', (e) => errors.push(e.code || String(e)));
  // One frame that announces `bytes` and sends them all: the server refuses it at its
  // header and never reads the rest.
  ws.write(frame(OP.TEXT, Buffer.alloc(bytes, 0x61)));
  const f = await ws.next(5000, 'the close frame');
  assert.equal(f.opcode, OP.CLOSE);
  assert.equal(f.code, 1009);
  ws.send(OP.CLOSE, closePayload(1000));
  ws.sock.end();
  await withTimeout(ws.end, 5000, 'the end of the TCP connection');
  await new Promise((r) => setTimeout(r, 50));   // an RST after the FIN would show here
  assert.deepEqual(errors, [], 'the server reset the connection instead of closing it');
}

test('a connection closed while the client still sends ends with FIN, not RST (20 times)', T, async (t) => {
  for (let i = 0; i < 20; i++) await oversizedThenClose(t, 1 << 20);
});

test('what a closed socket still receives is discarded within bounds and the socket is then closed', T, async (t) => {
  await oversizedThenClose(t, 3 << 20);
  // Every lingering socket goes once the peer's FIN arrives.
  const deadline = Date.now() + 5000;
  let n;
  while ((n = await metricOf(srv.server, 'neffos_lingering_sockets')) !== 0 && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  assert.equal(n, 0);
});
