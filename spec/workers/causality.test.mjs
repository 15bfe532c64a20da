// Issue 15 point 2 ("behave exactly as with one process"): what a handler sends to other workers
// before its answer reaches them before anything its client does after the answer. Here: a joins
// a room on one worker and its OnRoomJoined (run after the join reply) tells the room; b, on the
// other worker, joins the room only once a's join resolved, so, as with one loop, b must not hear
// of a's join. Without the ordering (the calls to other workers leaving before the sockets are
// written, and a worker's mailbox running before the sockets of the same wake-up: mailbox.h)
// b heard it in about a quarter of the pairs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { T, ROOT, serveFor, withTimeout, sleep } from '../interop/lib/server.mjs';
import { connectAs, workerOf } from '../interop/lib/parity.mjs';

const APP = path.join(ROOT, 'spec', 'workers', 'apps', 'causality.lua');
const WORKERS = Math.max(2, Number(process.env.NEFFOS_WORKERS || 2));
const PAIRS = 60;

test('a broadcast sent before an answer reaches the other workers before what the client does next', T, async (t) => {
  const s = await serveFor(t, APP, ['--workers', String(WORKERS)]);
  let pairs = 0;
  const heard = [];
  for (let i = 0; pairs < PAIRS && i < 4 * PAIRS; i++) {
    const a = await connectAs(t, s.url(), `a${i}`, { ns: 'chat', events: ['notify'] });
    const b = await connectAs(t, s.url(), `b${i}`, { ns: 'chat', events: ['notify'] });
    const apart = (await workerOf(a.ns)) !== (await workerOf(b.ns));
    if (apart) {
      pairs++;
      await withTimeout(a.ns.joinRoom(`r${i}`), 5000, 'a joins');
      await withTimeout(b.ns.joinRoom(`r${i}`), 5000, 'b joins');
      // b's own OnRoomJoined tells a: once a has it, anything for b from a's join has come too.
      await withTimeout((async () => { while (!a.rec.bodies('notify').includes(`b${i} joined r${i}`)) await sleep(5); })(),
        5000, 'a hears b');
      if (b.rec.bodies('notify').some((x) => x.startsWith(`a${i} `))) heard.push(i);
    }
    a.conn.close();
    b.conn.close();
  }
  assert.equal(pairs, PAIRS, 'enough pairs on two workers');
  assert.deepEqual(heard, [], `b heard of a join made before its own in ${heard.length} of ${pairs} pairs`);
});
