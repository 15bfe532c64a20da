// The Lua client's output is bounded: a peer that stops reading (a stalled upstream of a bridge)
// cannot make the server hold unbounded memory outside the Lua heap cap. Past 32 MiB of unwritten
// bytes a send fails with nil, "write closed" (host/client/nf_client.c, max_output).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ROOT, T, serveFor, rawIn } from '../interop/lib/server.mjs';

/** A WebSocket endpoint that answers the upgrade, then never reads again. */
function stalledUpstream(t) {
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', (d) => {
      const key = /Sec-WebSocket-Key: *([^\r\n]+)/i.exec(d.toString())[1];
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      sock.pause();   // from now on nothing is read: the kernel's buffers fill, then the client's
    });
  });
  t.after(() => server.close());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

test('a peer that stops reading: the client refuses sends past its output bound', { timeout: 120_000 }, async (t) => {
  const port = await stalledUpstream(t);
  const s = await serveFor(t, path.join(ROOT, 'spec', 'author', 'apps', 'client_flood.lua'));
  const c = await rawIn(t, s, 'v1');
  const answer = await c.ask(`$1;v1;;flood;0;0;ws://127.0.0.1:${port}/up`, 100_000);
  const m = /^\$1;v1;;flood;0;0;refused after (\d+) MiB: write closed$/.exec(answer);
  assert.ok(m, answer);
  // 32 MiB queued in the client, plus what the kernel's socket buffers took first.
  assert.ok(Number(m[1]) >= 16 && Number(m[1]) <= 64, answer);
});
