// The Lua API end to end with neffos.js: the per-connection store, rooms, server asks,
// timers, sleep, the sandbox's limits and library, JSON, and result mapping
// (docs/lua-api.md). The app is spec/reload/apps/api, copied to a temporary directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, ROOT, startServer, dial, withTimeout } from '../interop/lib/server.mjs';

let server, dir;
before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-api-'));
  cpSync(path.join(ROOT, 'spec', 'reload', 'apps', 'api'), dir, { recursive: true });
  server = await startServer(dir, { args: ['--lua-instruction-limit', '2000000', '--lua-memory-limit-mb', '64'] });
});
after(async () => {
  if (server) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function connect(t, handlers = {}) {
  const conn = await dial(t, server.url(), { default: handlers });
  return withTimeout(conn.connect('default'), 5000, 'connect default');
}
const ask = async (ns, event, body = '') => (await withTimeout(ns.ask(event, body), 10000, `ask ${event}`)).Body;
const askErr = (ns, event, body = '') =>
  withTimeout(ns.ask(event, body).then(() => null, (e) => e.message), 10000, `ask ${event}`);

test('conn:increment keeps a per-connection counter', T, async (t) => {
  const a = await connect(t);
  const b = await connect(t);
  assert.equal(await ask(a, 'count'), '1');
  assert.equal(await ask(a, 'count'), '2');
  assert.equal(await ask(b, 'count'), '1');
});

test('rooms: forced join, list, members, leave', T, async (t) => {
  const ns = await connect(t);
  assert.equal(await ask(ns, 'join', 'r1'), 'r1');
  assert.equal(await ask(ns, 'join', 'r2'), 'r1,r2');
  assert.ok(ns.room('r1'), 'neffos.js joined r1 too');
  assert.ok((await ask(ns, 'members', 'r1')).split(',').includes(ns.conn.ID));
  assert.equal(await ask(ns, 'leave', 'r1'), '1');
  assert.equal(await askErr(ns, 'leave', 'r1'), 'not in r1');
});

test('server:ask to this connection by ID waits for the client\'s answer', T, async (t) => {
  const ns = await connect(t, { question: (_ns, msg) => neffos_reply(`<${msg.Body}>`) });
  assert.equal(await ask(ns, 'askme', 'hi'), 'you said <hi>');
});

// neffos.js answers a server ask when the handler returns neffos.reply(x).
import * as neffos from 'neffos.js';
const neffos_reply = (x) => neffos.reply(x);

test('neffos.sleep waits without blocking other connections', T, async (t) => {
  const a = await connect(t);
  const b = await connect(t);
  const slow = ask(a, 'nap');
  assert.equal(await ask(b, 'count'), '1');
  assert.equal(await slow, 'rested');
});

test('neffos.after runs later and may emit to the connection', T, async (t) => {
  let resolve;
  const later = new Promise((r) => { resolve = r; });
  const ns = await connect(t, { later: (_ns, msg) => resolve(msg.Body) });
  assert.equal(await ask(ns, 'after'), 'scheduled');
  assert.equal(await withTimeout(later, 5000, 'timer emit'), 'timer fired');
});

test('top-level neffos.every ticks', T, async (t) => {
  const ns = await connect(t);
  const first = Number(await ask(ns, 'ticks'));
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(Number(await ask(ns, 'ticks')) > first);
});

test('the instruction limit ends a runaway handler only, even one that catches the error', T, async (t) => {
  const ns = await connect(t);
  assert.match(await askErr(ns, 'spin'), /instruction limit exceeded/);
  assert.match(await askErr(ns, 'spin_pcall'), /instruction limit exceeded/);
  assert.equal(await ask(ns, 'count'), '1', 'the connection and the server go on');
});

test('the memory cap fails the handler with "not enough memory" and the server goes on', T, async (t) => {
  const ns = await connect(t);
  assert.match(await askErr(ns, 'hog'), /not enough memory/);
  assert.equal(await ask(ns, 'count'), '1');
});

test('the sandbox has no io, os.execute, debug; require is there', T, async (t) => {
  const ns = await connect(t);
  assert.equal(await ask(ns, 'sandbox'), 'nil,nil,nil,false');
});

test('neffos.json round trip', T, async (t) => {
  const ns = await connect(t);
  assert.deepEqual(JSON.parse(await ask(ns, 'json', '{"a":[1,2]}')), { a: [1, 2], seen: true });
});

test('result mapping: non-string errors, bad returns, empty errors never go out empty', T, async (t) => {
  const ns = await connect(t);
  assert.equal(await askErr(ns, 'raise_table'), '(error object is a table value)');
  assert.match(await askErr(ns, 'bad_return'), /handler returned a boolean/);
  assert.equal(await askErr(ns, 'empty_error'), 'error');
});

test('conn:connect from on_connect: the client is connected to "forced" after the handshake', T, async (t) => {
  const conn = await dial(t, server.url(), { forced: {} }, { headers: { 'X-Force': '1' } });
  // It arrives right after "A", before dial() resolves: waitServerConnect would miss it (docs/protocol.md §7.3).
  const { eventually } = await import('../interop/lib/server.mjs');
  const f = await eventually(() => conn.namespace('forced'), 'forced namespace connected');
  assert.equal((await f.ask('hi', '')).Body, 'hi from forced');
});

test('conn:connect from a handler waits for the client; ns:disconnect forces it out', T, async (t) => {
  const conn = await dial(t, server.url(), { default: {}, forced: {} });
  const ns = await withTimeout(conn.connect('default'), 5000, 'connect default');
  assert.equal(await ask(ns, 'connect_forced'), 'forced true');
  const f = conn.namespace('forced');
  assert.ok(f);
  assert.equal((await f.ask('kick', '')).Body, 'bye');
  const { eventually } = await import('../interop/lib/server.mjs');
  await eventually(() => conn.namespace('forced') === undefined, 'forced disconnect');
});
