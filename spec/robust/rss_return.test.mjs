// Memory goes back to the system (issue 14 point 3), measured where users see it: the RSS of
// the Release server (the build the examples, the package and the benchmark use; its allocator is
// jemalloc, host/base/heap.h). 5,000 receivers get a broadcast window each and leave; once the
// server is quiet its RSS must be within 20% of what it was before they came, and a second
// round must not hold more than the first left. broadcast_memory.test.mjs checks the live heap on
// the sanitizer build; this checks the pages. Counts, not timings: each wait is bounded and polls.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RELEASE = process.env.NEFFOS_RELEASE_BUILD || path.join(root, 'build-release');
process.env.NEFFOS_BIN = path.join(RELEASE, 'neffos');   // before server.mjs reads it
const BENCH = path.join(RELEASE, 'neffos-bench');
const { ROOT, serveFor, metricOf, eventually } = await import('../interop/lib/server.mjs');

const APP = path.join(ROOT, 'spec', 'bench', 'app.lua');
const RECEIVERS = 5000;
const built = existsSync(process.env.NEFFOS_BIN) && existsSync(BENCH);
const T = { timeout: 120_000, skip: built ? false : `no Release build in ${RELEASE} (bash .ci/build Release)` };

function statusKb(pid, field) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return Number(m[1]);
}

function broadcast(s) {
  return new Promise((resolve, reject) => {
    execFile(BENCH, ['broadcast', '--url', s.url(), '--namespace', 'v1', '--event', 'shout', '--recv-event', 'chat',
      '--window', '64', '--receivers', String(RECEIVERS), '--seconds', '2', '--server-pid', String(s.proc.pid)],
    { timeout: 90_000 }, (err, stdout, stderr) => {
      try { resolve({ code: err ? err.code : 0, json: JSON.parse(stdout.trim().split('\n').pop()), out: stdout + stderr }); }
      catch { reject(new Error(`no JSON from neffos-bench broadcast:\n${stdout}\n${stderr}`)); }
    });
  });
}

// One round: the receivers come, get the broadcasts, leave; returns the RSS once the server,
// with every connection gone, has had its quiet sweep (which gives memory back).
async function round(s) {
  const trims = await metricOf(s, 'neffos_heap_trims_total');
  const r = await broadcast(s);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.json.lost, 0, r.out);
  assert.ok(r.json.deliveries > RECEIVERS, r.out);
  await eventually(async () => (await metricOf(s, 'neffos_connections')) === 0, 'every receiver gone', 20_000);
  await eventually(async () => (await metricOf(s, 'neffos_heap_trims_total')) > trims, 'the quiet sweep', 20_000);
  return statusKb(s.proc.pid, 'VmRSS');
}

test(`after ${RECEIVERS} receivers left, the server's RSS is within 20% of before they came`, T, async (t) => {
  const s = await serveFor(t, APP, ['--log-level', 'warn']);
  await metricOf(s, 'neffos_connections');   // the first /metrics request's own allocations
  const before = statusKb(s.proc.pid, 'VmRSS');
  const after = await round(s);
  const peak = statusKb(s.proc.pid, 'VmHWM');
  const again = await round(s);
  t.diagnostic(`RSS: ${before} kB before, ${peak} kB at peak, ${after} kB after one round, ${again} kB after two`);
  assert.ok(peak > before * 1.5, `the receivers used memory: peak ${peak} kB, before ${before} kB`);
  assert.ok(after <= before * 1.2, `RSS ${before} kB before the receivers came, ${after} kB after they left`);
  assert.ok(again <= after * 1.1, `RSS ${after} kB after one round, ${again} kB after two`);
});
