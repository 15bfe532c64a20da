// App code that escapes the sandbox's guards (issue 11, points 7-11): finalizers, <close>
// handlers, long C calls (metered patterns, the watchdog), signals while the loop is
// blocked, the file loader, and conn:close codes. Each test starts its own server with its
// flags and stops it; every wait is bounded, and the assertions are on events (an answer,
// a log line, an exit), not on how long something took.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ROOT, RawClient, startServer, withTimeout, eventually, serveFor } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'guards');
const T = { timeout: 60_000 };

const serve = (t, args = [], opts = {}) => serveFor(t, APP, args, opts);

/** A raw neffos client connected to namespace g. */
async function g(t, s) {
  const c = await RawClient.connect(t, s.url());
  assert.equal(await c.ask('$0;g;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  return c;
}

/** Another client is served: the loop is not held. */
async function othersServed(t, s, what, ms = 10_000) {
  const c = await g(t, s);
  assert.equal(await c.ask(`$1;g;;echo;0;0;${what}`, ms), `$1;g;;echo;0;0;${what}`);
  c.close();
}

/** The body of an error reply to `$id;g;;event;...`, or a failure with the frame. */
function errorOf(frame, id, event) {
  const head = `$${id};g;;${event};1;0;`;
  assert.ok(frame.startsWith(head), `an error reply to ${event}, got ${JSON.stringify(frame.slice(0, 200))}`);
  return frame.slice(head.length);
}

function vmKb(pid, field) {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

/** SIGTERM; resolves with the exit, bounded. */
async function terminate(s, ms) {
  s.stopping = true;   // the exit is the test's, not a crash
  s.proc.kill('SIGTERM');
  return withTimeout(s.exited, ms, 'the process exiting after SIGTERM');
}

// ---- 7. finalizers ---------------------------------------------------------------------------------

test('a looping __gc cannot be set: that handler fails, others are served, SIGTERM ends the process', T, async (t) => {
  const s = await serve(t, ['--grace-ms', '1000']);
  const c = await g(t, s);
  const err = errorOf(await c.ask('$1;g;;gc;0;0;', 10_000), 1, 'gc');
  assert.match(err, /__gc metamethods are not available/);
  await othersServed(t, s, 'after gc');
  assert.equal(await c.ask('$2;g;;echo;0;0;same client', 10_000), '$2;g;;echo;0;0;same client');
  const exit = await terminate(s, 8000);
  assert.equal(exit.code, 0);
});

test('host objects have locked metatables: no finalizer can be slipped into the conn metatable', T, async (t) => {
  const s = await serve(t);
  const c = await g(t, s);
  assert.match(errorOf(await c.ask('$1;g;;inject;0;0;', 10_000), 1, 'inject'), /attempt to index a string value/);
  // A connection made and gone after the attempt, then a full collection: its conn object is
  // collected, with no app finalizer to run.
  const other = await g(t, s);
  other.close();
  await withTimeout(other.closed, 5000, 'the other client closing');
  await eventually(async () => (await c.ask('$2;g;;collect;0;0;', 10_000)) === '$2;g;;collect;0;0;collected' &&
    (await c.ask('$3;g;;echo;0;0;x', 10_000)) === '$3;g;;echo;0;0;x', 'collect and echo answered', 10_000);
  await othersServed(t, s, 'after the collection');
});

// ---- 8. <close> handlers -----------------------------------------------------------------------------

test('a <close> that loops in a raising handler fails on the instruction budget; others are served', T, async (t) => {
  const s = await serve(t, ['--lua-instruction-limit', '5000000']);
  const c = await g(t, s);
  c.sendText('$1;g;;close_loop;0;0;');
  await othersServed(t, s, 'during close_loop');
  assert.match(errorOf(await c.nextText(10_000, 'the close_loop reply'), 1, 'close_loop'), /instruction limit exceeded/);
  assert.equal(await c.ask('$2;g;;echo;0;0;same client', 10_000), '$2;g;;echo;0;0;same client');
});

test('a <close> that allocates past the cap in a raising handler fails on the memory cap; RSS stays bounded', T, async (t) => {
  // A small ASan quarantine, so that memory freed by the collector is not counted as kept.
  const asan = `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=8`;
  const s = await serve(t, ['--lua-memory-limit-mb', '32', '--lua-instruction-limit', '0'], { env: { ASAN_OPTIONS: asan } });
  const c = await g(t, s);
  const before = vmKb(s.proc.pid, 'VmHWM');
  assert.match(errorOf(await c.ask('$1;g;;close_alloc;0;0;', 20_000), 1, 'close_alloc'), /not enough memory/);
  await othersServed(t, s, 'after close_alloc');
  const peak = vmKb(s.proc.pid, 'VmHWM');
  t.diagnostic(`peak RSS ${before} kB before, ${peak} kB after (the __close would take 300 MiB)`);
  // 32 MiB of Lua heap (plus ASan's redzones and quarantine) - not the 300 MiB it asked for.
  assert.ok(peak - before < 150 * 1024, `peak RSS grew by ${peak - before} kB`);
});

test('a handler at the memory cap that forces a connect of its own connection: the host\'s part runs off the cap', T, async (t) => {
  // The local OnNamespaceConnect is invoked inside the calling handler (lua_invoke.c): the host's
  // Lua allocations there (names, the run's thread, the ns object and msg, its caches) are in no
  // protected call, so a refusal by the cap aborted the process ("Lua panic: not enough memory").
  // Each step fills the heap to the cap: a small cap and 25 steps keep it to seconds.
  const s = await serve(t, ['--lua-memory-limit-mb', '8', '--lua-instruction-limit', '0']);
  for (let margin = 1000, id = 1; margin >= 20; margin -= 40, id++) {
    const c = await g(t, s);
    const frame = await c.ask(`$${id};g;;connect_full;0;0;8 ${margin}`, 20_000);
    assert.match(frame, new RegExp(`^\\$${id};g;;connect_full;(0;0;nil (refused|not enough memory)|1;0;not enough memory)$`), `margin ${margin}`);
    c.close();
    s.assertAlive();
  }
});

test('the app\'s pcall around code that fills the heap to the cap returns false, "not enough memory"', T, async (t) => {
  // scripts/neffos.lua's pcall wrapper packed the results into a table after pcall returned: with
  // the heap still full, that allocation raised past the app's pcall and the handler failed.
  const s = await serve(t, ['--lua-memory-limit-mb', '8', '--lua-instruction-limit', '0']);
  for (let id = 1; id <= 5; id++) {
    const c = await g(t, s);
    assert.equal(await c.ask(`$${id};g;;pcall_full;0;0;`, 20_000), `$${id};g;;pcall_full;0;0;caught false not enough memory filled`);
    c.close();
  }
  s.assertAlive();
});

test('a coroutine that died over budget with a looping <close> pending is closed later in bounded time', T, async (t) => {
  const s = await serve(t, ['--lua-instruction-limit', '5000000']);
  const c = await g(t, s);
  assert.match(errorOf(await c.ask('$1;g;;park;0;0;', 10_000), 1, 'park'), /instruction limit exceeded/);
  assert.equal(await c.ask('$2;g;;unpark;0;0;', 10_000), '$2;g;;unpark;0;0;unparked');
  await othersServed(t, s, 'after unpark');
});

test('a handler abandoned by the drain while it waits has its looping <close> stopped; the process exits 0', T, async (t) => {
  const s = await serve(t, ['--lua-instruction-limit', '5000000', '--grace-ms', '300']);
  const c = await g(t, s);
  c.sendText('$1;g;;nap_close;0;0;');
  await othersServed(t, s, 'while nap_close sleeps');
  const exit = await terminate(s, 10_000);
  assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`);
  assert.match(s.logs(), /a __close handler of an abandoned handler failed: .*instruction limit exceeded/);
});

// ---- 9. long C calls ----------------------------------------------------------------------------------

test('a backtracking pattern on 2,000 spaces is metered: that handler fails, others are served', T, async (t) => {
  const s = await serve(t, ['--lua-instruction-limit', '20000000']);
  const c = await g(t, s);
  assert.equal(await c.ask('$1;g;;kv;0;0; a = b ', 10_000), '$1;g;;kv;0;0;a=b', 'the parser works');
  c.sendText(`$2;g;;kv;0;0;${' '.repeat(2000)}`);
  await othersServed(t, s, 'during the pattern');
  assert.match(errorOf(await c.nextText(15_000, 'the kv reply'), 2, 'kv'), /instruction limit exceeded/);
  assert.equal(await c.ask('$3;g;;echo;0;0;same client', 10_000), '$3;g;;echo;0;0;same client');
});

test('the metered pattern functions give exactly stock Lua 5.4\'s results', T, async (t) => {
  const lua = spawnSync('lua5.4', ['-e', `io.write(dofile(${JSON.stringify(path.join(APP, 'patterns.lua'))})())`],
    { encoding: 'latin1', timeout: 10_000 });
  assert.equal(lua.status, 0, lua.stderr);
  const s = await serve(t);
  const c = await g(t, s);
  c.sendText('$1;g;;patterns;0;0;');
  const reply = await c.next(10_000, 'the patterns reply');
  assert.equal(reply.data.toString('latin1'), `$1;g;;patterns;0;0;${lua.stdout}`);
});

test('the watchdog names a C call that blocks the loop, then ends the process with code 3', T, async (t) => {
  const s = await serve(t, ['--watchdog-warn-ms', '300', '--watchdog-kill-ms', '1500']);
  const c = await g(t, s);
  c.sendText('$1;g;;block;0;0;');
  const exit = await withTimeout(s.exited, 20_000, 'the watchdog ending the process');
  s.stopping = true;
  assert.equal(exit.code, 3, `exit ${JSON.stringify(exit)}\n${s.logs()}`);
  const logs = s.logs();
  assert.match(logs, /warn .*watchdog: handler g\/block \(.*guards\/app\.lua:\d+\) has run for \d+ ms/);
  assert.match(logs, /error .*watchdog: handler g\/block \(.*guards\/app\.lua:\d+\) has run for \d+ ms .*exiting with code 3/);
});

test('SIGTERM works while a C call blocks the loop: the process exits after the grace period', T, async (t) => {
  const s = await serve(t, ['--watchdog-warn-ms', '200', '--watchdog-kill-ms', '0', '--grace-ms', '500']);
  const c = await g(t, s);
  c.sendText('$1;g;;block;0;0;');
  await eventually(() => /watchdog: handler g\/block/.test(s.logs()), 'the loop seen blocked', 15_000);
  const exit = await terminate(s, 15_000);
  assert.equal(exit.code, 3, `exit ${JSON.stringify(exit)}`);
  assert.match(s.logs(), /watchdog: still running \d+ ms after SIGTERM \(grace period 500 ms\), the event loop is blocked by handler g\/block/);
});

// ---- 10. the file loader ---------------------------------------------------------------------------------

test('app code reaches no file outside its directory (neffos.new_env, load_app, require, string swaps)', T, async (t) => {
  const s = await serve(t);
  const c = await g(t, s);
  assert.equal(await c.ask('$1;g;;escape;0;0;', 10_000), '$1;g;;escape;0;0;none');
});

// ---- 11. conn:close --------------------------------------------------------------------------------------

test('conn:close refuses codes a sender may not use and reasons that are not UTF-8', T, async (t) => {
  const s = await serve(t);
  const c = await g(t, s);
  let id = 1;
  for (const code of [1004, 1005, 1006, 1015, 1016, 2999, 999, 5000]) {
    const err = errorOf(await c.ask(`$${id};g;;close;0;0;${code}`, 10_000), id, 'close');
    assert.match(err, new RegExp(`close code ${code} may not be sent`));
    id++;
  }
  assert.match(errorOf(await c.ask(`$${id};g;;close;0;0;4000 BAD`, 10_000), id, 'close'), /close reason must be UTF-8/);
  id++;
  assert.equal(await c.ask(`$${id};g;;echo;0;0;still open`, 10_000), `$${id};g;;echo;0;0;still open`);
  id++;
  // A code that may be sent, with a UTF-8 reason: the client sees exactly that.
  c.sendText(`$${id};g;;close;0;0;1014 r\u00e9essayer`);
  const closed = await c.waitClose(10_000);
  assert.deepEqual(closed, { code: 1014, reason: 'r\u00e9essayer' });
});
