// The scale-out suite, run once per broker (redis.test.mjs, nats.test.mjs): three neffos
// processes behind one broker must behave to neffos.js clients like one process, and keep
// serving their own clients while the broker is away.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCluster, client, metrics, rss, sleep, eventually, withTimeout } from './cluster.mjs';

const T = { timeout: 60_000 };
// Nothing arrived that should not have: give stray deliveries this long to show up.
const QUIET_MS = 400;

export function scaleoutSuite(kind) {
  const c = useCluster(kind, 3);
  let seq = 0;
  const uniq = (what) => `${what}-${++seq}`;

  // alice and carol on node 0, bob on node 1, dave on node 2.
  async function four(t) {
    await c.ready;
    const [n0, n1, n2] = c.nodes;
    const tag = uniq('u');
    const a = await client(t, n0, `alice-${tag}`);
    const b = await client(t, n1, `bob-${tag}`);
    const cc = await client(t, n0, `carol-${tag}`);
    const d = await client(t, n2, `dave-${tag}`);
    // A namespace connect is answered before the broker confirms the process's subscription
    // (docs/protocol.md §14): a broadcast from another process in that window is missed, as
    // with Go neffos. Tests that broadcast right away wait for the confirmations.
    for (const n of c.nodes)
      await eventually(async () => (await metrics(n)).neffos_exchange_subscriptions_pending === 0,
        `${kind}: subscriptions confirmed`, 10_000);
    return { a, b, c: cc, d };
  }

  test(`${kind}: a namespace broadcast reaches every process, the sender included`, T, async (t) => {
    const { a, b, c: cc, d } = await four(t);
    const before = await Promise.all(c.nodes.map(metrics));
    const body = uniq('all');
    a.ns.emit('all', body);
    for (const x of [a, b, cc, d]) await x.saw(`news - ${body}`);
    // The exchange metrics move: node 0 published it, nodes 1 and 2 received it.
    const after = await Promise.all(c.nodes.map(metrics));
    assert.ok(after[0].neffos_exchange_published_total > before[0].neffos_exchange_published_total, 'published on node 0');
    for (const i of [1, 2])
      assert.ok(after[i].neffos_exchange_received_total > before[i].neffos_exchange_received_total, `received on node ${i}`);
  });

  test(`${kind}: the excluded sender is skipped on its own process only`, T, async (t) => {
    const { a, b, c: cc, d } = await four(t);
    const body = uniq('others');
    a.ns.emit('others', body);
    for (const x of [b, cc, d]) await x.saw(`news - ${body}`);
    await sleep(QUIET_MS);
    assert.equal(a.has(`news - ${body}`), false, 'the sender got its own broadcast');
    // Exclusion by an ID that lives on another process (Go cannot do this one).
    const body2 = uniq('except');
    a.ns.emit('except_id', JSON.stringify({ except: b.name, text: body2 }));
    for (const x of [a, cc, d]) await x.saw(`news - ${body2}`);
    await sleep(QUIET_MS);
    assert.equal(b.has(`news - ${body2}`), false, 'the excluded remote ID got the broadcast');
  });

  test(`${kind}: a room message reaches the room's members on other processes only`, T, async (t) => {
    const { a, b, c: cc, d } = await four(t);
    const room = uniq('room');
    await withTimeout(a.ns.joinRoom(room), 5000, 'a joins');
    await withTimeout(b.ns.joinRoom(room), 5000, 'b joins');
    await withTimeout(d.ns.joinRoom(room), 5000, 'd joins');
    const body = uniq('chat');
    a.ns.room(room).emit('room', body);
    await b.saw(`chat ${room} ${body}`);
    await d.saw(`chat ${room} ${body}`);
    await sleep(QUIET_MS);
    assert.equal(cc.has(`chat ${room} ${body}`), false, 'a non-member got the room message');
    assert.equal(a.has(`chat ${room} ${body}`), false, 'the sender got its own room message');
  });

  test(`${kind}: a message to one ID reaches that connection on its process, nobody else`, T, async (t) => {
    const { a, b, c: cc, d } = await four(t);
    const body = uniq('direct');
    a.ns.emit('direct', JSON.stringify({ to: d.name, text: body }));
    await d.saw(`direct - ${body}`);
    // To a local ID (no bus round trip) and to an ID that exists nowhere (no error).
    const local = uniq('direct');
    a.ns.emit('direct', JSON.stringify({ to: cc.name, text: local }));
    await cc.saw(`direct - ${local}`);
    a.ns.emit('direct', JSON.stringify({ to: 'nobody-anywhere', text: uniq('lost') }));
    await sleep(QUIET_MS);
    for (const x of [a, b, cc]) assert.equal(x.has(`direct - ${body}`), false, `${x.name} got a message for ${d.name}`);
  });

  test(`${kind}: server:ask of a connection on another process`, T, async (t) => {
    const { a, b, d } = await four(t);
    const r = await withTimeout(a.ns.ask('ask_other', JSON.stringify({ to: b.name })), 10_000, 'ask via node 1');
    assert.equal(r.Body, `answer: ${b.name} says hi`);
    const r2 = await withTimeout(d.ns.ask('ask_other', JSON.stringify({ to: a.name })), 10_000, 'ask via node 0');
    assert.equal(r2.Body, `answer: ${a.name} says hi`);
    // Several at once, both ways.
    const many = await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) =>
      (i % 2 ? a : b).ns.ask('ask_other', JSON.stringify({ to: (i % 2 ? d : a).name })))), 15_000, '20 asks');
    assert.equal(many.length, 20);
    // Nobody has that ID: the asker's timeout.
    await assert.rejects(withTimeout(a.ns.ask('ask_other', JSON.stringify({ to: 'ghost', timeout: 0.5 })), 5000, 'ghost ask'),
      (e) => /ask failed: timeout/.test(e.message));
  });

  test(`${kind}: clients join and leave while others chat`, T, async (t) => {
    const { a, b } = await four(t);
    const n2 = c.nodes[2];
    let stop = false;
    const sent = [];
    const chatter = (async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        const body = `tick-${seq}-${i}`;
        sent.push(body);
        a.ns.emit('others', body);
        await sleep(10);
      }
    })();
    for (let round = 0; round < 5; round++) {
      const e = await client(null, n2, `eve-${uniq('e')}`);
      await eventually(() => e.got.some((l) => l.startsWith('news - tick-')), 'eve hears the chat', 5000, 20);
      e.conn.close();
      await sleep(30);
    }
    stop = true;
    await chatter;
    // bob, on another process, heard every tick that was sent (the broker stayed up).
    const last = sent[sent.length - 1];
    await b.saw(`news - ${last}`);
    const heard = b.got.filter((l) => l.startsWith('news - tick-')).length;
    assert.ok(heard >= sent.length, `bob heard ${heard} of ${sent.length}`);
    for (const node of c.nodes) node.assertAlive();
  });

  test(`${kind}: a namespace left and joined again at once on a process is still subscribed`, T, async (t) => {
    await c.ready;
    const [n0, , n2] = c.nodes;
    const a = await client(t, n0, `alice-${uniq('u')}`);
    // Node 2 has no other client: each round unsubscribes and subscribes the same channel
    // again, the second request often on its way before the broker answered the first.
    let z;
    for (let i = 0; i < 10; i++) {
      z = await client(null, n2, `zoe-${uniq('z')}`);
      if (i < 9) { await withTimeout(z.ns.disconnect(), 5000, 'zoe leaves'); z.conn.close(); }
    }
    t.after(() => z.conn.close());
    await eventually(async () => {
      const body = uniq('still');
      a.ns.emit('all', body);
      await sleep(50);
      return z.has(`news - ${body}`);
    }, 'zoe hears alice after the churn', 5000, 0);
  });

  test(`${kind}: a process whose last client closed holds no channel at the broker`, T, async (t) => {
    await c.ready;
    const n2 = c.nodes[2];
    // Closed, not disconnected first: the close path must give the namespace's channel back too
    // (it used to keep it, and the broker kept sending that namespace's traffic to this process).
    for (let i = 0; i < 3; i++) {
      const z = await client(null, n2, `yara-${uniq('y')}`);
      assert.ok((await metrics(n2)).neffos_exchange_channels >= 2, 'a namespace and an ID channel while connected');
      z.conn.close();
    }
    await eventually(async () => (await metrics(n2)).neffos_connections === 0, 'node 2 has no connection left');
    await eventually(async () => (await metrics(n2)).neffos_exchange_channels === 0,
      `node 2 holds no channel (has ${(await metrics(n2)).neffos_exchange_channels})`, 5000);
  });

  test(`${kind}: broker down and back: local traffic never stops, remote traffic resumes, memory bounded`, { timeout: 120_000 }, async (t) => {
    const { a, b, c: cc } = await four(t);
    const [n0] = c.nodes;
    c.nodes.forEach((n) => n.assertAlive());
    await c.broker.stop();
    await eventually(async () => (await metrics(n0)).neffos_exchange_connected === 0, 'node 0 sees the broker down', 10_000);

    // Local delivery keeps working while the broker is away.
    const local = uniq('local');
    a.ns.emit('all', local);
    await cc.saw(`news - ${local}`);
    await a.saw(`news - ${local}`);

    // A burst while down: dropped and counted, not queued.
    const before = await metrics(n0);
    const rssBefore = rss(n0);
    const BURST = 1000;
    const big = 'x'.repeat(8 * 1024);
    for (let i = 0; i < BURST; i++) a.ns.emit('others', big);
    await eventually(async () => (await metrics(n0)).neffos_exchange_dropped_total >= before.neffos_exchange_dropped_total + BURST,
      'the burst is counted as dropped', 20_000, 100);
    const grown = rss(n0) - rssBefore;
    assert.ok(grown < 48 * 1024 * 1024, `RSS grew by ${grown} bytes during an 8 MB burst while down`);
    await cc.saw(`news - ${big}`, 10_000);   // carol (same process) still got it

    // The broker comes back on the same port: every node reconnects and resubscribes.
    await c.broker.start();
    for (const node of c.nodes)
      await eventually(async () => (await metrics(node)).neffos_exchange_connected === 1, 'reconnected', 15_000, 100);
    // Cross-process traffic resumes (bounded retries: a message sent while a subscriber was
    // still reconnecting may be lost, which is the documented at-most-once guarantee).
    let body;
    await eventually(async () => {
      body = uniq('again');
      a.ns.emit('all', body);
      await sleep(100);
      return b.has(`news - ${body}`);
    }, 'bob hears alice again', 15_000, 0);
    const r = await withTimeout(b.ns.ask('ask_other', JSON.stringify({ to: a.name })), 10_000, 'ask after reconnect');
    assert.equal(r.Body, `answer: ${a.name} says hi`);
    c.nodes.forEach((n) => n.assertAlive());
    assert.match(n0.logs(), /reconnecting in \d+ ms/);
  });
}
