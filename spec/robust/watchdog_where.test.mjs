// The watchdog's "handler ns/event (app.lua:N)" across hot reloads. The location text is
// cached per handler function (lua_run.c, `location`): these check that a reload, a function
// shared by two events and a function that moved all give the text of the code that runs now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RawClient, startServer, eventually } from '../interop/lib/server.mjs';

const T = { timeout: 60_000 };

// `pad` blank lines move the handlers down; `blocking` makes `block` stop the loop in one C
// call that no hook interrupts (the watchdog's case); `quick` and `block` may share a function.
function appSource({ pad = 0, blocking = false, shared = false }) {
  return `local neffos = require "neffos"
${'\n'.repeat(pad)}local function block(ns, msg)
  ${blocking ? 'table.move({}, 1, 1e12, 2)' : ''}
  return "done"
end
local function quick(ns, msg) return "quick" end
return neffos.server {
  endpoint = "/echo",
  namespaces = { w = { block = block, quick = ${shared ? 'block' : 'quick'} } },
}
`;
}

async function serve(t, dir) {
  const s = await startServer(dir, { args: ['--watchdog-warn-ms', '200', '--watchdog-kill-ms', '0', '--grace-ms', '300', '--no-watch'] });
  t.after(() => s.stop());
  return s;
}

async function client(t, s) {
  const c = await RawClient.connect(t, s.url());
  assert.equal(await c.ask('$0;w;;_OnNamespaceConnect;0;0;', 10_000), '$0;;;;;;');
  return c;
}

/** Rewrites the app and waits for the reload (SIGHUP) to serve it: `quick`'s answer says so. */
async function reload(s, c, dir, src, want) {
  writeFileSync(path.join(dir, 'app.lua'), src);
  s.proc.kill('SIGHUP');
  let id = 100;
  await eventually(async () => (await c.ask(`$${++id};w;;quick;0;0;`, 5000)) === `$${id};w;;quick;0;0;${want}`,
    'the reloaded app serving', 10_000);
}

test('after reloads, the watchdog names the handler\'s current line, also for a function two events share', T, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-wd-where-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'app.lua'), appSource({ shared: true }));
  const s = await serve(t, dir);
  const c = await client(t, s);
  // Version 1: `block` (line 2) runs under both names, so its location is cached.
  assert.equal(await c.ask('$1;w;;block;0;0;', 10_000), '$1;w;;block;0;0;done');
  assert.equal(await c.ask('$2;w;;quick;0;0;', 10_000), '$2;w;;quick;0;0;done');
  // Version 2: the same code 7 lines lower, and not shared.
  await reload(s, c, dir, appSource({ pad: 7 }), 'quick');
  assert.equal(await c.ask('$3;w;;block;0;0;', 10_000), '$3;w;;block;0;0;done');
  // Version 3: 20 lines lower, and now it blocks: the watchdog must name line 22, not 2 or 9.
  await reload(s, c, dir, appSource({ pad: 20, blocking: true }), 'quick');
  c.sendText('$4;w;;block;0;0;');
  await eventually(() => /watchdog: handler w\/block \(/.test(s.logs()), 'the watchdog warning', 20_000);
  const line = /watchdog: handler w\/block \([^)]*app\.lua:(\d+)\)/.exec(s.logs());
  assert.ok(line, s.logs());
  assert.equal(Number(line[1]), 22, s.logs());
});

// Each version holds 8 MiB of its own (its handler's upvalue) and notes, at its load, how much
// of the heap the older versions still hold (after a full collection): only the serving one.
function heldSource(version) {
  return `local neffos = require "neffos"
collectgarbage("collect")
local heap_kb = collectgarbage("count")
local parts = {}
for i = 1, 64 do parts[i] = string.rep("x", 128 * 1024) .. "${version}" .. i end
local function hold(ns, msg) return tostring(#parts) end
return neffos.server {
  endpoint = "/echo",
  namespaces = { w = { hold = hold, heap = function() return tostring(math.floor(heap_kb)) end } },
}
`;
}

test('reloads with no message between them let the replaced versions\' handlers go', T, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-wd-held-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'app.lua'), heldSource(1));
  const s = await serve(t, dir);
  const c = await client(t, s);
  // Version 1's `hold` runs: the watchdog's location of it is cached.
  assert.equal(await c.ask('$1;w;;hold;0;0;', 10_000), '$1;w;;hold;0;0;64');
  // Two reloads and not one message: nothing runs a handler in between.
  for (const v of [2, 3]) {
    writeFileSync(path.join(dir, 'app.lua'), heldSource(v));
    s.proc.kill('SIGHUP');
    await eventually(() => s.logs().includes(`version ${v} serving`), `version ${v} serving`, 10_000);
  }
  // Version 3 loaded beside version 2 (serving then): 8 MiB and the base, not version 1's too.
  const heap = Number((await c.ask('$2;w;;heap;0;0;', 10_000)).split(';').pop());
  assert.ok(heap < 12 * 1024, `${heap} KiB still held at version 3's load\n${s.logs()}`);
});
