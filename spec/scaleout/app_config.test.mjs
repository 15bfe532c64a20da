// neffos.scale_out { redis = URL } in the app does what --redis does (issue 6: "or from the app script").
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startServer, dial, withTimeout } from '../interop/lib/server.mjs';
import { Broker, eventually, metrics } from './lib/cluster.mjs';

const APP = path.join(ROOT, 'spec', 'scaleout', 'apps', 'from_app.lua');
const T = { timeout: 60_000 };
const broker = new Broker('redis');
const nodes = [];
after(async () => {
  for (const n of nodes) await n.stop().catch(() => {});
  await broker.stop();
});

test('two processes whose app calls neffos.scale_out share a broadcast', T, async (t) => {
  await broker.start();
  const env = { NEFFOS_TEST_REDIS: `redis://127.0.0.1:${broker.port}` };
  for (let i = 0; i < 2; i++)
    nodes.push(await startServer(APP, { endpoint: '/cluster', args: ['--no-watch'], env }));
  for (const n of nodes)
    await eventually(async () => (await metrics(n)).neffos_exchange_connected === 1, 'connected', 10_000);
  const got = [];
  let wake;
  const seen = new Promise((r) => { wake = r; });
  const b = await dial(t, nodes[1].url('/cluster'), { default: { news: (c, m) => { got.push(m.Body); wake(); } } },
    { headers: { 'X-Username': 'bob' } });
  await withTimeout(b.connect('default'), 5000, 'bob connects');
  const a = await dial(t, nodes[0].url('/cluster'), { default: {} }, { headers: { 'X-Username': 'alice' } });
  const ans = await withTimeout(a.connect('default'), 5000, 'alice connects');
  // Subscriptions are asynchronous: retry the broadcast until it crosses (bounded).
  for (let i = 0; i < 50 && got.length === 0; i++) {
    ans.emit('all', 'hello from node 0');
    await Promise.race([seen, new Promise((r) => setTimeout(r, 100))]);
  }
  assert.ok(got.includes('hello from node 0'), `bob on node 1 got ${JSON.stringify(got)}`);
});

test('an app that asks for an unreachable broker does not start (exit 2, a clear message)', T, async () => {
  const dead = { NEFFOS_TEST_REDIS: 'redis://127.0.0.1:1' };
  await assert.rejects(startServer(APP, { endpoint: '/cluster', args: ['--no-watch'], env: dead, readyMs: 5000 }),
    (e) => /cannot reach redis|redis/i.test(e.message));
});
