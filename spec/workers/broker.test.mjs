// Issue 15 with a broker: a process of 2 workers keeps one Redis connection pair and is one node of
// the cluster. Its clients sit on both workers (neffos_worker_connections says so); broadcasts,
// `to = id` and server asks cross workers and processes exactly once, in each direction.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { T, startServer, eventually, withTimeout, sleep } from '../interop/lib/server.mjs';
import { Broker, APP, ENDPOINT, client, metrics } from '../scaleout/lib/cluster.mjs';

const broker = new Broker('redis');
const nodes = [];
after(async () => {
  for (const n of nodes) await n.stop();
  await broker.stop();
});

/** Redis connections from clients, the redis-cli asking included. */
function redisClients() {
  const out = execFileSync('redis-cli', ['-p', String(broker.port), 'CLIENT', 'LIST'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.startsWith('id=')).length - 1;
}

test('--workers 2 --redis: one connection pair, one node; traffic crosses workers and processes once', T, async (t) => {
  await broker.start();
  const a = await startServer(APP, { endpoint: ENDPOINT, args: ['--no-watch', '--workers', '2', ...broker.flags()] });
  nodes.push(a);
  await eventually(async () => (await metrics(a)).neffos_exchange_connected === 1, 'a: broker connected', 10_000);
  assert.equal(redisClients(), 2, 'the two-worker process: one subscriber and one publisher connection');
  const b = await startServer(APP, { endpoint: ENDPOINT, args: ['--no-watch', '--workers', '1', ...broker.flags()] });
  nodes.push(b);
  await eventually(async () => (await metrics(b)).neffos_exchange_connected === 1, 'b: broker connected', 10_000);
  assert.equal(redisClients(), 4, 'and one pair for the one-worker process');

  const as = [];
  for (let i = 0; i < 4; i++) as.push(await client(t, a, `wa${i}`));
  const perWorker = await withTimeout(fetch(`http://127.0.0.1:${a.port}/metrics`).then((r) => r.text()), 5000, 'metrics');
  assert.match(perWorker, /neffos_worker_connections\{worker="1"\} 2/);
  assert.match(perWorker, /neffos_worker_connections\{worker="2"\} 2/);
  const bc = await client(t, b, 'wb');
  // Subscriptions of both workers reach the broker (through worker 1) before the traffic.
  await sleep(300);

  // every client of a, on either worker, to all but itself: each other client, here and on b, once
  for (const c of as) c.ns.emit('others', `from ${c.name}`);
  for (const c of [...as, bc]) {
    for (const s of as) if (s !== c) await c.saw(`news - from ${s.name}`);
  }
  // from b: every client of a, both workers
  bc.ns.emit('all', 'from b');
  for (const c of [...as, bc]) await c.saw('news - from b');
  // to = id across processes and workers
  for (const c of as) bc.ns.emit('direct', JSON.stringify({ to: c.name, text: `to ${c.name}` }));
  for (const c of as) await c.saw(`direct - to ${c.name}`);
  as[3].ns.emit('direct', JSON.stringify({ to: 'wb', text: 'to wb' }));
  await bc.saw('direct - to wb');
  await sleep(300);
  for (const c of [...as, bc]) {
    const counts = new Map();
    for (const line of c.got) counts.set(line, (counts.get(line) || 0) + 1);
    for (const [line, n] of counts) assert.equal(n, 1, `${c.name} got ${JSON.stringify(line)} ${n} times`);
  }
  // server asks: b asks clients on both of a's workers, and a client of a's asks b's
  for (const c of as) {
    const r = await withTimeout(bc.ns.ask('ask_other', JSON.stringify({ to: c.name, timeout: 3 })), 5000, `ask ${c.name}`);
    assert.equal(r.Body, `answer: ${c.name} says hi`);
  }
  for (const c of as) {
    const r = await withTimeout(c.ns.ask('ask_other', JSON.stringify({ to: 'wb', timeout: 3 })), 5000, 'ask wb');
    assert.equal(r.Body, 'answer: wb says hi');
  }
});
