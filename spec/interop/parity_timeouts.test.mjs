// Issue 3, timeouts and liveness (docs/protocol.md §12.4, §17.6; docs/lua-api.md `timeouts`): with
// timeouts = { read = 1 } a client that sends nothing is closed with 1001 "read timeout"
// (a close frame: 17.6.1) within a bound; any data frame, an empty frame, or a ping
// keeps a connection alive (17.6.3: unlike Go, pings count).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, startServer, dial, RawClient, withTimeout, eventually, sleep } from './lib/server.mjs';

const h = useServer(appPath('parity_timeouts.lua'));
const READ_MS = 1000;
const SWEEP_MS = 250;   // docs/architecture.md: one sweep every 250 ms

async function rawDefault(t, name) {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': name } });
  assert.equal(await r.ask('$c;default;;_OnNamespaceConnect;0;0;'), '$c;;;;;;');
  return r;
}
/** Keeps `r` alive with `send` every 250 ms until the test ends. */
function keepAlive(t, r, send) {
  const timer = setInterval(() => { if (r.isOpen()) send(); }, 250);
  t.after(() => clearInterval(timer));
}

test('an idle client is closed with 1001 "read timeout" after about 1 s; forced events and on_disconnect run', T, async (t) => {
  const watcher = await rawDefault(t, 'idle-watcher');
  keepAlive(t, watcher, () => watcher.sendText(''));
  const t0 = Date.now();
  const idle = await rawDefault(t, 'idle-raw');
  const info = await idle.waitClose(5000);
  const took = Date.now() - t0;
  assert.deepEqual(info, { code: 1001, reason: 'read timeout' });
  assert.ok(took >= READ_MS - 50, `closed after ${took} ms, before the timeout`);
  assert.ok(took <= READ_MS + SWEEP_MS + 1000, `closed after ${took} ms`);
  await eventually(async () => (await watcher.ask('$l;default;;log;0;0;idle-raw')).includes('on_disconnect'), 'on_disconnect');
  assert.equal(await watcher.ask('$m;default;;log;0;0;idle-raw'),
    '$m;default;;log;0;0;disconnect forced=true local=true\non_disconnect');

  // neffos.js: it sends nothing while idle (docs/protocol.md §12.4), so it is closed too
  const conn = await dial(t, h.server.url(), { default: {} });
  await withTimeout(conn.connect('default'), 5000, 'connect');
  await eventually(() => conn.isClosed(), 'neffos.js closed by the read timeout', 5000);
});

test('server writes do not count: a silent client that receives every 200 ms is still closed', T, async (t) => {
  const r = await rawDefault(t, 'tick-raw');
  r.sendText(';default;;tick;0;0;');
  const info = await r.waitClose(5000);
  assert.equal(info.code, 1001);
  assert.ok(r.frames.length >= 2, 'ticks were arriving');
});

test('data frames, empty frames and pings each keep a connection alive (17.6.3)', { timeout: 30_000 }, async (t) => {
  const data = await rawDefault(t, 'alive-data');
  const empty = await rawDefault(t, 'alive-empty');
  const ping = await rawDefault(t, 'alive-ping');
  keepAlive(t, data, () => data.sendText(';default;;nothing;0;0;x'));
  keepAlive(t, empty, () => empty.sendText(''));
  keepAlive(t, ping, () => ping.ws.ping());
  const ns = await withTimeout((await dial(t, h.server.url(), { default: {} })).connect('default'), 5000, 'connect');
  keepAlive(t, { isOpen: () => !ns.conn.isClosed() }, () => ns.emit('nothing', ''));
  await sleep(READ_MS * 2.5);
  for (const [name, c] of [['data', data], ['empty', empty], ['ping', ping]]) assert.ok(c.isOpen(), `${name} client still open`);
  assert.equal(ns.conn.isClosed(), false, 'the neffos.js client that emits stays');
  assert.equal(await data.ask('$e;default;;echo;0;0;x'), '$e;default;;echo;0;0;echo: x');
  assert.equal(await ping.ask('$e;default;;echo;0;0;y'), '$e;default;;echo;0;0;echo: y');
});

test('write timeout: a client that stops reading while 12 MiB are queued is dropped after about 1 s', { timeout: 30_000 }, async (t) => {
  const server = await startServer(appPath('parity_timeouts_write.lua'));
  t.after(() => server.stop());
  // Uncompressed: permessage-deflate would queue the flood's repeated bytes as a few KiB.
  const slow = await RawClient.connect(t, server.url(), { headers: { 'X-Username': 'slow' }, perMessageDeflate: false });
  assert.equal(await slow.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  slow.ws._socket.pause();                           // stop reading: the server's output backs up
  slow.sendText('$2;default;;flood;0;0;48');          // 48 x 256 KiB, under the 16 MiB queue limit
  const watcher = await RawClient.connect(t, server.url(), { headers: { 'X-Username': 'watcher' } });
  assert.equal(await watcher.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  await eventually(async () => (await watcher.ask('$c;default;;closed;0;0;slow')) === '$c;default;;closed;0;0;1',
    'on_disconnect of the slow reader', 5000, 100);
  assert.match(server.logs(), /conn slow: write timeout, closing/);
  slow.ws._socket.resume();
  const info = await slow.waitClose(10_000);
  assert.equal(info.code, 1006, 'dropped without a close frame (it could not be written anyway)');
  assert.ok(slow.frames.length < 48, `only part of the flood arrived (${slow.frames.length} frames)`);
});
