// `neffos test APP [SPECS]` (bindings/cmd_test.c, scripts/neffos/testing.lua): passing specs exit 0,
// a failure exits 1 with the spec's file:line, an app that does not load fails with the app's
// file:line, a client handler that raises fails the spec, and the fake clock moves timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, BIN } from '../interop/lib/server.mjs';

function neffosTest(...args) {
  const r = spawnSync(BIN, ['test', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

test('the kit\'s specs pass: fake clock, sleeps, after(), reload', () => {
  const r = neffosTest('spec/author/kit');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /5 successes \/ 0 failures \/ 0 errors/);
});

test('failures exit 1 and name the spec\'s file:line; a client handler\'s error fails its spec', () => {
  const r = neffosTest('spec/author/fixtures/failing');
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /0 successes \/ 1 failure \/ 1 error/);
  assert.match(r.out, /fail_spec\.lua:7: Expected objects to be equal/);
  assert.match(r.out, /a client handler failed: spec\/author\/fixtures\/failing\/spec\/fail_spec\.lua:11: client handler boom/);
});

test('an app that does not load fails the spec with the app\'s file:line', () => {
  const r = neffosTest('spec/author/fixtures/broken');
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /broken\/app\.lua:4: neffos\.server: unknown field namespace/);
});

test('SPECS select files; a missing APP is a usage error', () => {
  const r = neffosTest('examples/echo', path.join('examples', 'echo', 'spec', 'echo_spec.lua'));
  assert.equal(r.code, 0, r.out);
  const bad = neffosTest('no/such/app');
  assert.equal(bad.code, 2);
  assert.match(bad.out, /no such app/);
});
