#!/usr/bin/env node
// The hot-reload figure of the benchmark table (issue 7): the Release server runs the
// stress app (spec/reload/apps/stress, copied to a temporary directory) with 1,000 idle
// neffos.js clients connected to namespace v1 and one client asking in a loop (one ask
// in flight). Each round rewrites app.lua in place with the next version number and
// measures from the write's return (the file is closed) to the first reply that carries
// the new version. Prints every round, the median, and the server's own load+swap time
// ("loaded in X ms" in its log); writes the median (ms) to $BUILD/reload_ms, which
// spec/bench/run.sh puts in the table.
//
//   node spec/bench/reload_latency.mjs [--conns 1000] [--rounds 10]
//
// Environment: BUILD (build-release), NEFFOS_BIN (default $BUILD/neffos).
// Bounded: dialling, every wait and the whole run (120 s); the server and the temp
// directory are removed whatever happens.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUILD = path.resolve(ROOT, process.env.BUILD || 'build-release');
process.env.NEFFOS_BIN ||= path.join(BUILD, 'neffos');
const { startServer, dial, withTimeout, sleep } = await import('../interop/lib/server.mjs');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const CONNS = arg('conns', 1000);
const ROUNDS = arg('rounds', 10);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const wholeRun = setTimeout(() => { console.error('reload_latency: gave up after 120 s'); cleanup().finally(() => process.exit(2)); }, 120_000);
let server, dir;
const conns = [];
let asking = false, loop;

async function cleanup() {
  asking = false;
  for (const c of conns) if (!c.isClosed()) c.close();
  if (server) await server.stop().catch((e) => console.error(e.message));
  server = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
}

try {
  dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-reload-bench-'));
  cpSync(path.join(ROOT, 'spec', 'reload', 'apps', 'stress'), dir, { recursive: true });
  const appFile = path.join(dir, 'app.lua');
  const template = readFileSync(appFile, 'utf8');
  const source = (n) => template.replace(/^local VERSION = \d+$/m, `local VERSION = ${n}`);
  server = await startServer(dir, { args: ['--log-level', 'info'] });

  // The idle crowd, connected to the namespace.
  for (let b = 0; b < CONNS; b += 100) {
    await Promise.all(Array.from({ length: Math.min(100, CONNS - b) }, async () => {
      const c = await dial(null, server.url(), { v1: {} }, undefined, 20_000);
      conns.push(c);
      await withTimeout(c.connect('v1'), 20_000, 'connect v1');
    }));
  }
  const asker = await dial(null, server.url(), { v1: {} });
  conns.push(asker);
  const ns = await withTimeout(asker.connect('v1'), 5000, 'connect v1');

  // The asking client: records when each version is first seen.
  const firstSeen = new Map();
  asking = true;
  loop = (async () => {
    for (let n = 0; asking; n++) {
      const r = await withTimeout(ns.ask('ask', String(n)), 5000, 'ask');
      const m = /^v(\d+):/.exec(r.Body);
      if (!m) throw new Error(`unexpected reply ${JSON.stringify(r.Body)}`);
      if (!firstSeen.has(Number(m[1]))) firstSeen.set(Number(m[1]), performance.now());
    }
  })();
  loop.catch(() => {});   // seen where it is awaited; never an unhandled rejection
  const waitFor = async (v) => {
    const end = performance.now() + 5000;
    while (!firstSeen.has(v)) {
      if (performance.now() > end) throw new Error(`no reply from v${v} within 5 s`);
      await Promise.race([loop, sleep(1)]);
    }
  };
  await waitFor(1);

  const ms = [];
  for (let r = 0; r < ROUNDS; r++) {
    const v = r + 2;
    await sleep(300);
    writeFileSync(appFile, source(v));
    const written = performance.now();
    await waitFor(v);
    ms.push(firstSeen.get(v) - written);
    console.log(`round ${r + 1}: v${v} ${ms.at(-1).toFixed(1)} ms`);
  }
  asking = false;
  await withTimeout(loop, 6000, 'the ask loop to finish');

  const load = [...server.logs().matchAll(/loaded in ([\d.]+) ms/g)].map((m) => Number(m[1])).slice(1);
  const result = median(ms);
  console.log(`hot reload with ${CONNS} connected clients: write -> first reply from the new code, ` +
    `${ROUNDS} rounds: median ${result.toFixed(1)} ms (min ${Math.min(...ms).toFixed(1)}, max ${Math.max(...ms).toFixed(1)}); ` +
    `of which debounce 10 ms, server load+swap median ${load.length ? median(load).toFixed(1) : '?'} ms`);
  writeFileSync(path.join(BUILD, 'reload_ms'), `${result.toFixed(1)}\n`);
  console.log(`(written to ${path.relative(ROOT, path.join(BUILD, 'reload_ms'))})`);
  await cleanup();
  clearTimeout(wholeRun);
} catch (e) {
  console.error(`reload_latency: ${e.stack || e}`);
  if (server) console.error(server.describe());
  await cleanup();
  clearTimeout(wholeRun);
  process.exitCode = 1;
}
