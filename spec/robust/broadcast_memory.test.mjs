// Broadcast memory goes back (issue 14 point 3): after receivers got their broadcasts and left,
// the server, once quiet, gives free memory back to the system (neffos_heap_trims_total) and
// holds about the heap it held before they came (neffos_heap_bytes: the allocator's live bytes,
// Lua's garbage collected first). What a queued delivery costs is spec/c/test_core_broadcast_memory.c;
// RSS at peak and after the clients left is in spec/bench/run.sh's bc cases (a Release build).
// Counts, not timings: every wait is bounded and polls /metrics.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, serveFor, rawIn, metricOf, eventually } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'bench', 'app.lua');   // "shout" broadcasts to the others as "chat"
const T = { timeout: 90_000 };
const RECEIVERS = 100;
const MESSAGES = 50;
const BODY = 'x'.repeat(1000);

async function heapAndTrims(s) {
  return { heap: await metricOf(s, 'neffos_heap_bytes'), trims: await metricOf(s, 'neffos_heap_trims_total') };
}

// One round: receivers come, get every broadcast, and leave; then the server is quiet.
async function round(t, s) {
  const receivers = [];
  for (let i = 0; i < RECEIVERS; i++) receivers.push(await rawIn(t, s));
  const sender = await rawIn(t, s);
  for (let k = 0; k < MESSAGES; k++) sender.sendText(`;v1;;shout;0;0;${k} ${BODY}`);
  for (const r of receivers) {
    for (let k = 0; k < MESSAGES; k++) {
      const text = await r.nextText(10_000, `broadcast ${k}`);
      assert.equal(text, `;v1;;chat;0;0;${k} ${BODY}`);
    }
  }
  assert.equal(await metricOf(s, 'neffos_broadcast_deliveries_total') % (RECEIVERS * MESSAGES), 0);
  const trims = await metricOf(s, 'neffos_heap_trims_total');
  for (const c of [...receivers, sender]) c.close();
  await eventually(async () => (await metricOf(s, 'neffos_connections')) === 0, 'every client gone', 10_000);
  // The sweep that finds the server quiet after the closes gives memory back.
  await eventually(async () => (await metricOf(s, 'neffos_heap_trims_total')) > trims, 'a heap trim', 10_000);
}

test('after the receivers left, memory is given back and the heap is about what it was before they came', T, async (t) => {
  const s = await serveFor(t, APP, ['--log-level', 'warn']);
  await metricOf(s, 'neffos_connections');   // the first /metrics request's own allocations
  const before = await heapAndTrims(s);
  await round(t, s);
  const after = await heapAndTrims(s);
  assert.ok(after.trims > before.trims);
  // 100 receivers x 50 queued 1 KB broadcasts came and went: what stays is the host's own
  // tables grown for them (descriptor maps, the coroutine pool), not their messages.
  assert.ok(after.heap <= before.heap * 1.2 + 256 * 1024,
    `heap ${before.heap} bytes before the receivers came, ${after.heap} after they left`);
  // And a second round holds no more than the first left.
  await round(t, s);
  const again = await heapAndTrims(s);
  t.diagnostic(`heap bytes: ${before.heap} before, ${after.heap} after one round, ${again.heap} after two`);
  assert.ok(again.heap <= after.heap * 1.1 + 64 * 1024, `heap ${after.heap} after one round, ${again.heap} after two`);
});
