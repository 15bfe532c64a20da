// Issue 3, the server-level Lua API (docs/lua-api.md "The server"): server:count(),
// server:connections() (the Server.Do equivalent), server:get(id), server:members(ns[, room]),
// server.endpoint, and timers (every, after) that broadcast. Several neffos.js clients at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, RawClient, withTimeout, eventually, sleep } from './lib/server.mjs';
import { connectAs, askBody, askError } from './lib/parity.mjs';

const h = useServer(appPath('parity_server.lua'));
const client = (t, name) => connectAs(t, h.server.url(), name, { events: ['tick', 'later'], extraNs: { other: {} } });
const ids = async (ns) => (await askBody(ns, 'ids')).split(',').filter(Boolean);

test('server:count() and server:connections() agree and follow opens and closes', T, async (t) => {
  const [a, b, c] = await Promise.all(['sv-a', 'sv-b', 'sv-c'].map((n) => client(t, n)));
  const raw = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'sv-raw' } });
  // Earlier tests' connections may still be closing: wait until both views agree.
  const before = await eventually(async () => {
    const list = await ids(a.ns);
    const count = Number(await askBody(a.ns, 'count'));
    return count === list.length ? list : null;
  }, 'count() == #connections()');
  for (const id of ['sv-a', 'sv-b', 'sv-c', 'sv-raw']) assert.ok(before.includes(id), `${id} listed (no namespace needed)`);
  c.conn.close();
  raw.close();
  await eventually(async () => !(await ids(a.ns)).includes('sv-c'), 'sv-c gone from connections()');
  await eventually(async () => Number(await askBody(a.ns, 'count')) === before.length - 2, 'count() down by two');
  assert.ok(!(await ids(b.ns)).includes('sv-raw'));
});

test('server:get(id): a conn with its namespaces; nil for unknown and closed IDs', T, async (t) => {
  const [a, b] = await Promise.all([client(t, 'gt-a'), client(t, 'gt-b')]);
  await withTimeout(b.conn.connect('other'), 5000, 'connect other');
  assert.equal(await askBody(a.ns, 'get', 'gt-b'), 'gt-b in default,other closed=false');
  assert.equal(await askBody(a.ns, 'get', 'gt-a'), 'gt-a in default closed=false');
  assert.equal(await askError(a.ns, 'get', 'gt-nobody'), 'no connection gt-nobody');
  b.conn.close();
  await eventually(async () => (await askError(a.ns, 'get', 'gt-b').catch(() => '')) === 'no connection gt-b', 'closed: nil');
});

test('server:members(ns) and server:members(ns, room)', T, async (t) => {
  const [a, b, c] = await Promise.all(['mb-a', 'mb-b', 'mb-c'].map((n) => client(t, n)));
  await withTimeout(a.conn.connect('other'), 5000, 'a other');
  await withTimeout(c.conn.connect('other'), 5000, 'c other');
  await withTimeout(a.ns.joinRoom('m1'), 5000, 'join');
  await withTimeout(b.ns.joinRoom('m1'), 5000, 'join');
  await withTimeout(b.ns.joinRoom('m2'), 5000, 'join');
  const mine = (s) => s.split(',').filter((x) => x.startsWith('mb-')).join(',');
  assert.equal(mine(await askBody(a.ns, 'members', 'default')), 'mb-a,mb-b,mb-c');
  assert.equal(mine(await askBody(a.ns, 'members', 'other')), 'mb-a,mb-c');
  assert.equal(await askBody(a.ns, 'members', 'default|m1'), 'mb-a,mb-b');
  assert.equal(await askBody(a.ns, 'members', 'default|m2'), 'mb-b');
  assert.equal(await askBody(a.ns, 'members', 'default|nothing'), '');
  assert.equal(await askBody(a.ns, 'members', 'nope'), '');
  assert.equal(await withTimeout(b.ns.room('m1').leave(), 5000, 'leave'), null);
  assert.equal(await askBody(a.ns, 'members', 'default|m1'), 'mb-a');
  assert.ok(await withTimeout(c.conn.namespace('other').disconnect(), 5000, 'disconnect') == null);
  assert.equal(mine(await askBody(a.ns, 'members', 'other')), 'mb-a');
  assert.equal(await askBody(a.ns, 'endpoint'), '/echo true');
});

test('neffos.every broadcasts from the loop to a room, in order, and stops when cancelled; neffos.after too', T, async (t) => {
  const clients = await Promise.all(['tk-a', 'tk-b', 'tk-c'].map((n) => client(t, n)));
  await Promise.all(clients.map((c) => withTimeout(c.ns.joinRoom('ticks'), 5000, 'join ticks')));
  const outsider = await client(t, 'tk-out');
  assert.equal(await askBody(clients[0].ns, 'ticks', '5|0.05'), 'started');
  assert.equal(await askBody(clients[0].ns, 'later', 'once'), 'scheduled');
  for (const c of clients) {
    await c.rec.count('tick', 5);
    await c.rec.count('later', 1);
  }
  await sleep(300);
  for (const c of clients) {
    assert.deepEqual(c.rec.bodies('tick'), ['1', '2', '3', '4', '5'], 'five ticks, then the timer cancelled itself');
    assert.deepEqual(c.rec.bodies('later'), ['once'], 'a cancelled neffos.after never fires');
  }
  assert.deepEqual(outsider.rec.of('tick'), []);
});
