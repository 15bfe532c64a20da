// Hot reload under load (issue 4's test): 200 neffos.js clients each keep one ask in
// flight while app.lua is edited 20 times in every save style (in place, truncate +
// pause + write, temp file + rename, a burst of writes), including a syntax error, a
// runtime error at load and an invalid declaration, plus one edit of a required module.
//
// Every reply carries the version that answered it ("v7:<body>"; spec/reload/apps/stress).
// Asserted: no client disconnects; every ask is answered (bounded); a reply never comes
// from a broken save (those answer "BROKEN-v..."); and no reply comes from older code
// than a version some client had already seen before that ask was sent. That is the
// fair form of "every reply after the swap comes from the new code": the swap happens
// before the first reply of the new version leaves the server, so an ask written after
// any client saw that reply reached the server after the swap; asks in flight at the
// swap may still answer from the old code. Printed: the time from each save (its last
// write or rename returned) to the first reply from the new code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT, startServer, dial, withTimeout, eventually, rawHttp, sleep } from '../interop/lib/server.mjs';

const CLIENTS = 200;
const ASK_TIMEOUT_MS = 10_000;
const SETTLE_MS = 250;           // load after each edit before the next one

let server, dir, template;
const conns = [];

// ---- the app's versions -------------------------------------------------------------

/** app.lua with VERSION = n; `broken` marks it and breaks it in one of three ways. */
function appSource(n, broken = null) {
  let src = template.replace(/^local VERSION = \d+$/m, `local VERSION = ${n}`);
  if (broken) src = src.replace(/^local PREFIX = "v"$/m, 'local PREFIX = "BROKEN-v"');
  if (broken === 'syntax') src = src.replace('local version =', 'local version = =');
  if (broken === 'runtime') src = src.replace('return neffos.server {', 'local t = nil; t.boom = 1\nreturn neffos.server {');
  if (broken === 'declaration') src = src.replace('endpoint = "/echo",', 'endpoint = "/echo", namespace = {},');
  assert.notEqual(src, template, 'the template changed: update appSource');
  return src;
}

const file = (name) => path.join(dir, name);

/** The save styles; each returns once the save is complete (the time we measure from). */
const styles = {
  inPlace(name, text) { writeFileSync(file(name), text); },
  async truncateWrite(name, text) {
    writeFileSync(file(name), '');        // an editor that truncates, then writes
    await sleep(3);
    writeFileSync(file(name), text);
  },
  rename(name, text) {
    const tmp = file(`${name}.tmp-${process.pid}`);   // not *.lua: ignored by the watcher
    writeFileSync(tmp, text);
    renameSync(tmp, file(name));
  },
  burst(name, text) {
    // Several writes back to back: in chunks through one descriptor, then twice more
    // whole. Synchronous, so they land well inside the debounce: one reload.
    const fd = openSync(file(name), 'w');
    const third = Math.ceil(text.length / 3);
    for (let i = 0; i < text.length; i += third) writeSync(fd, text.slice(i, i + third));
    closeSync(fd);
    writeFileSync(file(name), text);
    writeFileSync(file(name), text);
  },
};

// 20 edits of app.lua (3 of them broken) and one of the module util.lua.
const PLAN = [
  ['app.lua', 'inPlace'], ['app.lua', 'truncateWrite'], ['app.lua', 'rename'], ['app.lua', 'burst'],
  ['app.lua', 'inPlace', 'syntax'], ['app.lua', 'inPlace'],
  ['app.lua', 'truncateWrite'], ['app.lua', 'rename'], ['app.lua', 'burst'],
  ['app.lua', 'rename', 'runtime'], ['app.lua', 'truncateWrite'],
  ['util.lua', 'inPlace'],
  ['app.lua', 'inPlace'], ['app.lua', 'rename'], ['app.lua', 'burst'],
  ['app.lua', 'burst', 'declaration'], ['app.lua', 'inPlace'],
  ['app.lua', 'rename'], ['app.lua', 'burst'], ['app.lua', 'truncateWrite'], ['app.lua', 'inPlace'],
];

// ---- what the clients observe ----------------------------------------------------------

const REPLY = /^(v|BROKEN-v)(\d+):(.*)$/s;
const obs = {
  asks: 0, replies: 0, errors: [], broken: [], malformed: [], stale: [], disconnects: [],
  inFlightOld: 0,         // replies from old code to asks sent before the newer one was seen (allowed)
  firstSeen: new Map(),   // version -> performance.now() of the first reply from it
  seenTimes: [],          // first-seen times, increasing
  seenMaxVersion: [],     // seenMaxVersion[i] = highest version among the first i+1 seen
};
let asking = false;
let stopping = false;

/** Highest version that some client had seen strictly before time `t`. */
function versionSeenBefore(t) {
  let lo = 0, hi = obs.seenTimes.length;   // first index with seenTimes[i] >= t
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (obs.seenTimes[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo === 0 ? 0 : obs.seenMaxVersion[lo - 1];
}

function record(sent, body, reply) {
  const now = performance.now();
  obs.replies++;
  const m = REPLY.exec(reply);
  if (!m || m[3] !== body) {
    if (obs.malformed.length < 5) obs.malformed.push(reply);
    return;
  }
  const v = Number(m[2]);
  if (m[1] !== 'v') {
    if (obs.broken.length < 5) obs.broken.push(reply);
    return;
  }
  if (!obs.firstSeen.has(v)) {
    obs.firstSeen.set(v, now);
    obs.seenTimes.push(now);
    obs.seenMaxVersion.push(Math.max(v, obs.seenMaxVersion.at(-1) ?? 0));
  }
  if (v < obs.seenMaxVersion.at(-1)) obs.inFlightOld++;
  const required = versionSeenBefore(sent);
  if (v < required && obs.stale.length < 10) {
    obs.stale.push(`ask sent ${(sent - obs.firstSeen.get(required)).toFixed(2)} ms after v${required} was first seen got v${v}`);
  }
}

async function askLoop(ns, i) {
  for (let n = 0; asking; n++) {
    const body = `${i}.${n}`;
    const sent = performance.now();
    obs.asks++;
    try {
      const msg = await withTimeout(ns.ask('ask', body), ASK_TIMEOUT_MS, `client ${i} ask ${n}`);
      record(sent, body, msg.Body);
    } catch (e) {
      if (obs.errors.length < 10) obs.errors.push(`client ${i}: ${e?.message ?? e}`);
      else obs.errors.push('');
      if (!asking) return;
      await sleep(10);
    }
  }
}

const health = () => rawHttp(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-stress-'));
  cpSync(path.join(ROOT, 'spec', 'reload', 'apps', 'stress'), dir, { recursive: true });
  template = readFileSync(file('app.lua'), 'utf8');
  server = await startServer(dir);
});

after(async () => {
  asking = false;
  stopping = true;
  for (const c of conns) if (!c.isClosed()) c.close();
  if (server) await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test(`${CLIENTS} clients asking through ${PLAN.length} edits: nothing lost, never broken or stale code`, { timeout: 120_000 }, async () => {
  // Connect everyone (in parallel batches), watching for any disconnect.
  for (let b = 0; b < CLIENTS; b += 50) {
    await Promise.all(Array.from({ length: Math.min(50, CLIENTS - b) }, async (_, j) => {
      const i = b + j;
      const conn = await dial(null, server.url(), {
        v1: { _OnNamespaceDisconnect: () => { if (!stopping) obs.disconnects.push(`client ${i}: namespace disconnected`); } },
      }, undefined, 10_000);
      conn.conn.addEventListener('close', (e) => { if (!stopping) obs.disconnects.push(`client ${i}: closed (${e.code})`); });
      conns[i] = conn;
    }));
  }
  const nss = await Promise.all(conns.map((c) => withTimeout(c.connect('v1'), 10_000, 'connect v1')));

  asking = true;
  const loops = nss.map((ns, i) => askLoop(ns, i));
  await eventually(() => obs.firstSeen.has(1), 'the first reply (v1)', 10_000, 10);
  await sleep(SETTLE_MS);

  const latencies = [];   // {edit, ms}
  let version = 1, appVersion = 1, validEdits = 0;
  for (const [k, [name, style, broken]] of PLAN.entries()) {
    const n = ++version;
    let text;
    if (name === 'util.lua') text = `return { version = ${n} }\n`;
    else { text = appSource(n, broken); if (!broken) appVersion = n; }
    const what = `edit ${k + 1}: ${name} ${style}${broken ? ` (${broken} error)` : ''} -> v${n}`;

    await styles[style](name, text);
    const written = performance.now();
    if (broken) {
      // The old code keeps serving; /health says why.
      const h = await eventually(async () => { const r = await health(); return r.status === 503 && r; }, `${what}: /health 503`, 10_000, 10);
      assert.match(h.body, /reload failed: .*app\.lua:\d+:/, what);
    } else {
      validEdits++;
      await eventually(() => obs.firstSeen.has(n), `${what}: a reply from v${n}`, 10_000, 2);
      latencies.push({ what, ms: obs.firstSeen.get(n) - written });
      assert.equal((await health()).status, 200, `${what}: healthy again`);
    }
    server.assertAlive();
    await sleep(SETTLE_MS);
  }
  assert.ok(appVersion > 1);

  asking = false;
  await withTimeout(Promise.all(loops), ASK_TIMEOUT_MS + 5000, 'the ask loops to finish');

  // The figures, then the verdicts.
  const ms = latencies.map((l) => l.ms).sort((a, b) => a - b);
  const med = ms.length % 2 ? ms[(ms.length - 1) / 2] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2;
  for (const l of latencies) console.log(`  ${l.what}: ${l.ms.toFixed(1)} ms`);
  console.log(`reload latency with ${CLIENTS} clients asking (save -> first reply from the new code), ` +
    `${ms.length} valid edits: min ${ms[0].toFixed(1)} ms, median ${med.toFixed(1)} ms, max ${ms.at(-1).toFixed(1)} ms`);
  console.log(`asks sent ${obs.asks}, answered ${obs.replies}, errors ${obs.errors.length}, ` +
    `stale ${obs.stale.length}, broken ${obs.broken.length}, disconnects ${obs.disconnects.length}; ` +
    `old-code replies to asks in flight at a swap (allowed) ${obs.inFlightOld}`);

  assert.deepEqual(obs.disconnects, [], 'no client was disconnected');
  assert.equal(obs.errors.length, 0, `every ask answered: ${obs.errors.filter(Boolean).join('; ')}`);
  assert.equal(obs.replies, obs.asks, 'as many replies as asks');
  assert.deepEqual(obs.broken, [], 'no reply from a broken save');
  assert.deepEqual(obs.malformed, [], 'every reply is "v<n>:<the body asked>"');
  assert.deepEqual(obs.stale, [], 'no reply from older code than a version already seen when the ask was sent');
  assert.ok(conns.every((c) => !c.isClosed()), 'all clients still connected');

  // Each valid save reloaded exactly once (a truncate that outlasts the debounce may add
  // a failed load of the empty file, never a successful one).
  const swaps = [...server.logs().matchAll(/reloaded .*: version (\d+) serving/g)].map((m) => Number(m[1]));
  assert.equal(swaps.length, validEdits, `one successful reload per valid save (got versions ${swaps.join(',')})`);
});
