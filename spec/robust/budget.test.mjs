// One client cannot hold the event loop by sending, again and again, messages whose handler runs into
// the instruction limit (each such run holds the loop for the whole budget): after
// --max-budget-overruns (3) such runs in a row its connection is closed with 1008 "handler budget
// exceeded", counted in neffos_limit_hits_total{limit="handler_budget"} and logged once. A run that
// finishes resets the count, so an app whose handler overruns now and then keeps its clients.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, serveFor, rawIn, metricOf } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'hostile.lua');
const T = { timeout: 90_000 };
const LIMIT = ['--lua-instruction-limit', '200000'];   // a short budget: each overrun is quick
const HITS = 'neffos_limit_hits_total{limit="handler_budget"}';

/** Asks the runaway handler; its answer is the budget error. */
async function overrun(c, n) {
  const r = await c.ask(`$${n};v1;;spin;0;0;`, 20_000);
  assert.match(r, new RegExp(`^\\$${n};v1;;spin;1;0;.*instruction limit exceeded`));
}

test('three runs over the budget in a row close the connection; a finished run resets the count', T, async (t) => {
  const s = await serveFor(t, APP, LIMIT);
  const c = await rawIn(t, s, 'v1');
  await overrun(c, 1);
  await overrun(c, 2);
  assert.equal(await c.ask('$3;v1;;echo;0;0;ok'), '$3;v1;;echo;0;0;ok');   // finished: the count starts again
  await overrun(c, 4);
  await overrun(c, 5);
  assert.equal(await c.ask('$6;v1;;echo;0;0;still'), '$6;v1;;echo;0;0;still');
  assert.equal(await metricOf(s, HITS), 0);

  for (const n of [7, 8, 9]) c.sendText(`$${n};v1;;spin;0;0;`);
  const close = await c.waitClose(30_000);
  assert.deepEqual(close, { code: 1008, reason: 'handler budget exceeded' });
  assert.equal(await metricOf(s, HITS), 1);
  assert.equal(s.logs().split('\n').filter((l) => /limit hit: handler runs in a row over the instruction limit/.test(l)).length, 1);

  const other = await rawIn(t, s, 'v1');   // everyone else is served
  assert.equal(await other.ask('$1;v1;;echo;0;0;served'), '$1;v1;;echo;0;0;served');
});

test('--max-budget-overruns 0 turns the bound off', T, async (t) => {
  const s = await serveFor(t, APP, [...LIMIT, '--max-budget-overruns', '0']);
  const c = await rawIn(t, s, 'v1');
  for (let n = 1; n <= 4; n++) await overrun(c, n);
  assert.equal(await c.ask('$5;v1;;echo;0;0;alive'), '$5;v1;;echo;0;0;alive');
  assert.equal(await metricOf(s, HITS), 0);
});
