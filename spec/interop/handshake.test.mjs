// The connection handshake (docs/protocol.md §4, §17.2): "M" -> "A<id>" or "H<error>", the ID hook, on_connect refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, UUID_V4 } from './lib/server.mjs';

const h = useServer(appPath('handshake.lua'));

test('neffos.js dial resolves with the ID of the A frame (4.1, 3.5)', T, async (t) => {
  const a = await dial(t, h.server.url(), { default: {} });
  const b = await dial(t, h.server.url(), { default: {} });
  assert.match(a.ID, UUID_V4, 'default ID is a UUID v4');
  assert.match(b.ID, UUID_V4);
  assert.notEqual(a.ID, b.ID, 'two connections get two IDs');
  // The ID is usable: the server reports the same ID for the connection.
  const ns = await a.connect('default');
  assert.equal((await ns.ask('whoami', '')).Body, a.ID);
});

test('raw: the server sends nothing before "M", then exactly "A" + id as a text frame (17.2.1-2)', T, async (t) => {
  const c = await RawClient.open(t, h.server.url());
  await c.expectNothing(300, 'no frame before the client\'s "M"');
  const ack = await c.handshake();
  assert.equal(ack[0], 'A');
  assert.match(ack.slice(1), UUID_V4);
  await c.expectNothing(200, 'nothing after the ack');
});

test('ID from the X-Username header via the id hook (real header, as neffos.js sends from Node)', T, async (t) => {
  const conn = await dial(t, h.server.url(), { default: {} }, { headers: { 'X-Username': 'alice' } });
  assert.equal(conn.ID, 'alice');
  const ns = await conn.connect('default');
  assert.equal((await ns.ask('whoami', '')).Body, 'alice');

  const raw = await RawClient.open(t, h.server.url(), { headers: { 'x-username': 'bob' } });
  assert.equal(await raw.handshake(), 'Abob', 'header lookup is case-insensitive');
});

test('ID from an X-Websocket-Header- query parameter (3.2, what the browser build sends)', T, async (t) => {
  const raw = await RawClient.open(t, h.server.url('/echo?X-Websocket-Header-X-Username=carol'));
  assert.equal(await raw.handshake(), 'Acarol');
  const raw2 = await RawClient.open(t, h.server.url('/echo?x-websocket-header-x-username=dave&plain=1'));
  assert.equal(await raw2.handshake(), 'Adave', 'the prefix matches case-insensitively');
});

test('an ID with a ";" is used as it is, never replaced (17.2.5; more in ids.test.mjs)', T, async (t) => {
  const raw = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'odd;id' } });
  assert.equal(await raw.handshake(), 'Aodd;id');
});

test('on_connect refusal: dial() rejects with exactly the hook\'s text (4.3)', T, async (t) => {
  await assert.rejects(
    dial(t, h.server.url(), { default: {} }, { headers: { 'X-Refuse': 'go away' } }),
    (err) => {
      assert.ok(err instanceof Error, 'an Error');
      assert.equal(err.message, 'rejected by on_connect: go away');
      return true;
    });
});

test('raw: refusal is "H" + text, then the server closes the connection (4.3, 17.2.2)', T, async (t) => {
  const raw = await RawClient.open(t, h.server.url(), { headers: { 'X-Refuse': 'not today' } });
  assert.equal(await raw.handshake(), 'Hrejected by on_connect: not today');
  await raw.waitClose(5000);
  // The server still serves others.
  const ok = await RawClient.open(t, h.server.url());
  assert.equal((await ok.handshake())[0], 'A');
});

test('raw: "A"/"H" frames from the client before "M" mean nothing (17.2.4)', T, async (t) => {
  const c = await RawClient.open(t, h.server.url());
  c.sendText('Aevil');
  c.sendText('Hgo away');
  const ack = await c.handshake();
  assert.match(ack, /^A/, `ack was ${JSON.stringify(ack)}`);
  assert.notEqual(ack.slice(1), 'evil');
  assert.match(ack.slice(1), UUID_V4);
});
