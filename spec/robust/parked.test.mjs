// Input parked behind a waiting handler is bounded in bytes, not only in frames (issue 11 point 2):
// with the default flags, five 1 MB frames behind a sleeping handler close the connection with
// 1008 "incoming queue full", counted in /metrics and logged once; a smaller --max-incoming-bytes
// is honoured, per-frame overhead included. The server goes on serving the others.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, RawClient, rawHttp, startServer, serveFor, rawIn, metricOf } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'hostile.lua');
const T = { timeout: 60_000 };

const serve = (t, args = [], opts = {}) => serveFor(t, APP, args, opts);

const v1 = (t, s) => rawIn(t, s, 'v1');

const limitHits = (s, limit) => metricOf(s, `neffos_limit_hits_total{limit="${limit}"}`);

/** Parks `n` frames of `size` bytes behind a handler that sleeps; returns the close info. */
async function park(t, s, n, size) {
  const c = await v1(t, s);
  c.sendText('$1;v1;;nap;0;0;10');          // holds the connection's turn for 10 s
  const body = 'x'.repeat(size - '$99;v1;;echo;0;0;'.length);
  for (let i = 0; i < n; i++) c.sendText(`$${i + 2};v1;;echo;0;0;${body}`.slice(0, size));
  return c.waitClose(10_000);
}

test('default bound: five 1 MB frames behind a waiting handler close with 1008 "incoming queue full"', T, async (t) => {
  const s = await serve(t);
  const closed = await park(t, s, 5, 1_000_000);
  assert.deepEqual(closed, { code: 1008, reason: 'incoming queue full' });
  assert.equal(await limitHits(s, 'incoming_bytes'), 1);
  assert.equal(s.logs().match(/limit hit: incoming queue bytes full/g)?.length, 1, 'logged once');
  const other = await v1(t, s);
  assert.equal(await other.ask('$1;v1;;echo;0;0;still here'), '$1;v1;;echo;0;0;still here');
});

test('--max-incoming-bytes: its bytes, job overhead included, bound the parked frames; within it nothing is lost', T, async (t) => {
  const s = await serve(t, ['--max-message-bytes', '16384', '--max-incoming-bytes', '65536']);
  // 6 x 10,000 bytes fit with their overhead: all answered, in order, once the handler is done.
  const c = await v1(t, s);
  c.sendText('$1;v1;;nap;0;0;0.3');
  const body = 'y'.repeat(10_000 - '$2;v1;;echo;0;0;'.length);
  for (let i = 2; i <= 7; i++) c.sendText(`$${i};v1;;echo;0;0;${body}`);
  assert.equal(await c.nextText(10_000, 'nap'), '$1;v1;;nap;0;0;rested');
  for (let i = 2; i <= 7; i++) assert.equal(await c.nextText(5000, `echo ${i}`), `$${i};v1;;echo;0;0;${body}`);
  // 7 x 10,000 do not: 70,000 bytes > 65,536.
  const closed = await park(t, s, 7, 10_000);
  assert.deepEqual(closed, { code: 1008, reason: 'incoming queue full' });
  assert.equal(await limitHits(s, 'incoming_bytes'), 1);
  assert.equal(await limitHits(s, 'incoming_queue'), 0, 'the frame count bound was not the one hit');
});
