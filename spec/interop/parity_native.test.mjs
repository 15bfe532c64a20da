// Issue 3, native messages (docs/protocol.md §4.7, §11, §17.1.4): an endpoint whose app declares only
// OnNativeMessage under "" serves plain WebSocket clients: no handshake frames, every frame
// (even "M" and seven-field text) goes to the handler, which answers with raw text or binary.
// neffos.js cannot dial such an endpoint (docs/protocol.md §4.7), so the client is the plain `ws` package.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, RawClient } from './lib/server.mjs';

const h = useServer(appPath('parity_native.lua'), { endpoint: '/native' });
const open = (t) => RawClient.open(t, h.server.url());

test('no handshake: the server sends nothing after the upgrade, and "M" is an ordinary message (4.7)', T, async (t) => {
  const c = await open(t);
  await c.expectNothing(300, 'no "A" frame, nothing at all');
  c.sendText('M');
  assert.equal(await c.nextText(5000, 'echo of M'), 'echo: M');
  c.sendText('info');
  assert.match(await c.nextText(5000, 'info'), /^native=true event=_OnNativeMessage ns=\[\] connects=\d+ count=\d+$/);
});

test('text in, raw text out; seven-field frames are raw too; the handler\'s return is not sent (11.1)', T, async (t) => {
  const c = await open(t);
  for (const s of ['hello', 'a;b;c;d;e;f;g', '$1;;;_OnNamespaceConnect;0;0;', ';;;_OnNativeMessage;0;0;x', 'κόσμε 🌍']) {
    c.sendText(s);
    assert.equal(await c.nextText(5000, `echo of ${s}`), `echo: ${s}`);
  }
  c.sendText('return');
  await c.expectNothing(300, 'the return value of a native handler goes nowhere');
});

test('binary in, binary out with the exact bytes', T, async (t) => {
  const c = await open(t);
  const payload = Buffer.from([0x00, 0xff, 0x3b, 0x4d, 0x80, 0x0a]);
  c.sendBinary(payload);
  const f = await c.next(5000, 'binary echo');
  assert.equal(f.binary, true);
  assert.deepEqual(f.data, Buffer.from(payload).reverse());
});

test('several plain clients at once: each gets its own echo; a loop over server:connections() reaches all', T, async (t) => {
  const clients = await Promise.all(Array.from({ length: 4 }, () => open(t)));
  await Promise.all(clients.map(async (c, i) => {
    c.sendText(`me ${i}`);
    assert.equal(await c.nextText(5000, `echo ${i}`), `echo: me ${i}`);
  }));
  clients[0].sendText('all:to everybody');
  for (const c of clients) assert.equal(await c.nextText(5000, 'the raw broadcast'), 'to everybody');
  for (const c of clients) await c.expectNothing(100);
});

test('server:broadcast(msg) of a received native message relays its body alone, as Go does (11)', T, async (t) => {
  // bindings/lua_server.c, host/core/broadcast.c: it went out as ';;;_OnNativeMessage;0;0;relay:...'
  const clients = await Promise.all(Array.from({ length: 3 }, () => open(t)));
  for (const [i, c] of clients.entries()) {   // every one connected and served before the relay
    c.sendText(`ready ${i}`);
    assert.equal(await c.nextText(5000, `echo ${i}`), `echo: ready ${i}`);
  }
  clients[1].sendText('relay:hello all');
  for (const c of clients) assert.equal(await c.nextText(5000, 'the relayed frame'), 'relay:hello all');
  for (const c of clients) await c.expectNothing(100);
});
