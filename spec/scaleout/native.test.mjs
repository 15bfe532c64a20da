// A received native message relayed with server:broadcast(msg) reaches the plain WebSocket
// clients of the other processes as its body alone, text or binary, as on its own process
// (docs/protocol.md §11, §14: the bus marker's frame kinds n and m).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startServer, RawClient, eventually } from '../interop/lib/server.mjs';
import { Broker, metrics } from './lib/cluster.mjs';

const T = { timeout: 60_000 };
const APP = path.join(ROOT, 'spec', 'scaleout', 'apps', 'native.lua');

for (const kind of ['redis', 'nats']) {
  test(`${kind}: a relayed native message reaches the other process as its body alone`, T, async (t) => {
    const broker = await new Broker(kind).start();
    const nodes = [];
    after(async () => {
      for (const n of nodes) await n.stop().catch(() => {});
      await broker.stop();
    });
    for (let i = 0; i < 2; i++)
      nodes.push(await startServer(APP, { endpoint: '/native', args: ['--no-watch', ...broker.flags()] }));
    for (const n of nodes)
      await eventually(async () => (await metrics(n)).neffos_exchange_connected === 1, `${kind} connected`, 10_000);
    const [a, b] = [await RawClient.open(t, nodes[0].url()), await RawClient.open(t, nodes[1].url())];
    for (const n of nodes)   // the namespace "" subscribed at the broker on both
      await eventually(async () => (await metrics(n)).neffos_exchange_subscriptions_pending === 0
        && (await metrics(n)).neffos_exchange_channels > 0, `${kind}: subscribed`, 10_000);
    a.sendText('hello, raw');
    assert.equal(await a.nextText(5000, 'the relayed text, here'), 'hello, raw');
    assert.equal(await b.nextText(5000, 'the relayed text, there'), 'hello, raw');
    const bytes = Buffer.from([0x00, 0xff, 0x3b, 0x0a]);
    b.sendBinary(bytes);
    for (const c of [a, b]) {
      const f = await c.next(5000, 'the relayed bytes');
      assert.equal(f.binary, true);
      assert.deepEqual(f.data, bytes);
    }
  });
}
