// Hot reload (issue 4) with neffos.js clients that stay connected throughout: saves in
// place, temp file + rename, an edit of a required module, a syntax error and a runtime
// error at load (old code keeps serving, /health says why), SIGHUP, neffos.state and
// on_reload, endpoints and namespaces added and removed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, startServer, dial, withTimeout, eventually, rawHttp, sleep } from '../interop/lib/server.mjs';

let server, dir, conn, ns;

// The app: namespace v1 answers `version` from version.lua and `hello` from app.lua;
// `extra` adds text to app.lua to declare more namespaces/endpoints.
function appSource({ hello = 'hello 1', extra = '', extraServers = '', broken = '' } = {}) {
  return `local neffos = require "neffos"
local version = require "version"
local state = neffos.state
state.loads = (state.loads or 0) + 1
${broken}
local main = neffos.server {
  endpoint = "/echo",
  on_reload = function(old) state.last_old = old.version end,
  namespaces = {
    v1 = {
      version = function() return version end,
      hello = function() return ${JSON.stringify(hello)} end,
      loads = function() return tostring(state.loads) .. "/" .. tostring(state.last_old) end,
      slow = function() neffos.sleep(0.3) return ${JSON.stringify(hello)} .. " (slow)" end,
    },
    ${extra}
  },
}
return { main, ${extraServers} }
`;
}

const write = (name, text) => writeFileSync(path.join(dir, name), text);
function writeViaRename(name, text) {
  const tmp = path.join(dir, `.${name}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path.join(dir, name));
}
const ask = async (event) => (await withTimeout(ns.ask(event, ''), 5000, `ask ${event}`)).Body;
const health = () => rawHttp(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');

/** Waits until `event` answers `want`; returns the ms from `since` to that answer. */
async function until(event, want, since) {
  await eventually(async () => (await ask(event)) === want, `${event} -> ${want}`, 5000, 10);
  return Date.now() - since;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-reload-'));
  write('version.lua', 'return "v1"\n');
  write('app.lua', appSource());
  server = await startServer(dir);
  conn = await dial(null, server.url(), { v1: {}, v2: {} });
  ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
});

after(async () => {
  if (conn && !conn.isClosed()) conn.close();
  if (server) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('an in-place save of a required module is served at once, on the same connection', T, async () => {
  assert.equal(await ask('version'), 'v1');
  const t0 = Date.now();
  write('version.lua', 'return "v2"\n');
  const ms = await until('version', 'v2', t0);
  console.log(`reload latency (write -> first reply from new code): ${ms} ms`);
  assert.equal(conn.isClosed(), false);
});

test('a temp file + rename save reloads once', T, async () => {
  const before = Number((await ask('loads')).split('/')[0]);
  const t0 = Date.now();
  writeViaRename('app.lua', appSource({ hello: 'hello 2' }));
  await until('hello', 'hello 2', t0);
  await sleep(200);
  assert.equal(Number((await ask('loads')).split('/')[0]), before + 1, 'exactly one reload');
});

test('neffos.state survives and on_reload sees the old version', T, async () => {
  const [loads, lastOld] = (await ask('loads')).split('/');
  assert.ok(Number(loads) >= 3);
  assert.ok(Number(lastOld) >= 2);
});

test('a syntax error keeps the old code serving and turns /health to 503 with file:line', T, async () => {
  write('app.lua', appSource({ hello: 'hello 3' }).replace('local main =', 'local main = ='));
  await eventually(async () => (await health()).status === 503, 'health 503');
  const h = await health();
  assert.match(h.body, /reload failed: .*app\.lua:\d+:/);
  assert.equal(await ask('hello'), 'hello 2', 'old code');
  assert.match(server.logs(), /reload failed: .*app\.lua:\d+:/);
  write('app.lua', appSource({ hello: 'hello 4' }));
  await until('hello', 'hello 4', Date.now());
  assert.equal((await health()).status, 200);
});

test('a runtime error at load keeps the old code', T, async () => {
  write('app.lua', appSource({ hello: 'hello 5', broken: 'local x = nil; x.boom = 1' }));
  await eventually(async () => (await health()).status === 503, 'health 503');
  assert.match((await health()).body, /app\.lua:5: attempt to index a nil value/);
  assert.equal(await ask('hello'), 'hello 4');
  write('app.lua', appSource({ hello: 'hello 6' }));
  await until('hello', 'hello 6', Date.now());
});

test('a handler that is waiting finishes on the code it started with', T, async () => {
  const slow = withTimeout(ns.ask('slow', ''), 5000, 'slow');
  await sleep(50);
  write('app.lua', appSource({ hello: 'hello 7' }));
  assert.equal((await slow).Body, 'hello 6 (slow)');
  await until('hello', 'hello 7', Date.now());
});

test('SIGHUP reloads', T, async () => {
  const before = Number((await ask('loads')).split('/')[0]);
  server.proc.kill('SIGHUP');
  await eventually(async () => Number((await ask('loads')).split('/')[0]) === before + 1, 'reloaded');
});

test('a namespace added is available at once; removed, its clients stay until they leave', T, async (t) => {
  write('app.lua', appSource({ hello: 'hello 8', extra: 'v2 = { ping = function() return "pong" end },' }));
  await until('hello', 'hello 8', Date.now());
  const ns2 = await withTimeout(conn.connect('v2'), 5000, 'connect v2');
  assert.equal((await ns2.ask('ping', '')).Body, 'pong');

  write('app.lua', appSource({ hello: 'hello 9' }));
  await until('hello', 'hello 9', Date.now());
  // Still connected to v2, but its handlers are gone: no answer to its events.
  assert.ok(conn.namespace('v2'));
  const other = await dial(t, server.url(), { v2: {} });
  await assert.rejects(withTimeout(other.connect('v2'), 5000, 'connect v2'), /bad namespace/);
});

test('an endpoint added is mounted; removed, its clients are closed with 1001', T, async (t) => {
  write('app.lua', appSource({
    hello: 'hello 10',
    extraServers: 'neffos.server { endpoint = "/other", namespaces = { x = { hi = function() return "other" end } } }',
  }));
  await until('hello', 'hello 10', Date.now());
  const o = await dial(null, server.url('/other'), { x: {} });
  const x = await withTimeout(o.connect('x'), 5000, 'connect x');
  assert.equal((await x.ask('hi', '')).Body, 'other');
  const closed = new Promise((resolve) => o.conn.addEventListener('close', (e) => resolve(e.code)));

  write('app.lua', appSource({ hello: 'hello 11' }));
  await until('hello', 'hello 11', Date.now());
  assert.equal(await withTimeout(closed, 5000, 'close of /other'), 1001);
  assert.equal(conn.isClosed(), false, 'the /echo client stays');
});
