// Hot reload as containers deliver code (issue 12 point 11), each update made exactly as
// its real author makes it:
// - Kubernetes projects a ConfigMap into a volume with its AtomicWriter
//   (kubernetes/pkg/volume/util/atomic_writer.go): the files live in a timestamped
//   directory `..2026_11_30_14_00_00.<random>`, `..data` is a symlink to it, each visible
//   file a symlink `app.lua -> ..data/app.lua`. An update writes a new timestamped
//   directory, points a new symlink `..data_tmp` at it, renames that over `..data`,
//   creates the visible symlinks of new files, and removes the old directory.
// - An operator replaces the whole directory: `mv app app.old`, then a new `app` (moved
//   in whole, or made and filled in place).
// - Where inotify sees nothing (NFS, some container mounts): --watch-poll-ms.
// Each update must give exactly one reload with /health 200 throughout (lib/episode.mjs).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, startServer, dial, withTimeout, eventually, rawHttp, sleep } from '../interop/lib/server.mjs';
import { appSource, moduleSource, who, served, oneReload, write } from './lib/episode.mjs';

const PAUSE_MS = 100;   // between an operator's two commands
const roots = [];
const servers = [];
after(async () => {
  for (const s of servers) await s.stop();
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function tmpRoot(name) {
  const r = fs.mkdtempSync(path.join(os.tmpdir(), `neffos-${name}-`));
  roots.push(r);
  return r;
}

async function start(appDir, args = []) {
  const server = await startServer(appDir, { args });
  servers.push(server);
  const conn = await dial(null, server.url(), { v1: {} });
  const ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
  return { server, conn, ns };
}

// ---- Kubernetes' AtomicWriter ----------------------------------------------------------

let stampSeq = 0;
/** The AtomicWriter's update of `target` to hold exactly `files` ({name: text}). */
function atomicWrite(target, files) {
  const dataLink = path.join(target, '..data');
  let old = null;
  try { old = fs.readlinkSync(dataLink); } catch { /* first write */ }
  // (5) a new timestamped directory: os.MkdirTemp(target, "..2006_01_02_15_04_05.")
  const d = new Date(Date.UTC(2026, 10, 30, 14, 0, stampSeq++));
  const stamp = d.toISOString().replace(/[-T:]/g, '_').replace(/\..*$/, '');
  const ts = fs.mkdtempSync(path.join(target, `..${stamp}.`));
  // (6) the payload into it
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(ts, name), text);
  // (7) ..data_tmp -> the new directory, (8) renamed over ..data
  const tmp = path.join(target, '..data_tmp');
  fs.symlinkSync(path.basename(ts), tmp);
  fs.renameSync(tmp, dataLink);
  // (9) visible symlinks of new files, (10) old ones removed, (11) the old directory removed
  for (const name of Object.keys(files)) {
    const link = path.join(target, name);
    try { fs.lstatSync(link); } catch { fs.symlinkSync(path.join('..data', name), link); }
  }
  for (const name of fs.readdirSync(target)) {
    if (!name.startsWith('..') && !(name in files)) fs.unlinkSync(path.join(target, name));
  }
  if (old) fs.rmSync(path.join(target, old), { recursive: true, force: true });
}

test('a ConfigMap update (the ..data symlink swap) reloads once, every time, new files included', T, async () => {
  const app = path.join(tmpRoot('configmap'), 'app');
  fs.mkdirSync(app);
  let files = { 'app.lua': appSource('c1'), 'util.lua': moduleSource('u1') };
  atomicWrite(app, files);
  const { ns } = await start(app);
  await served(ns, 'c1', 'u1');
  const update = (changes) => { files = { ...files, ...changes }; atomicWrite(app, files); };
  const barrier = (tag) => update({ 'app.lua': appSource(tag, { requires: Object.keys(files).filter((f) => f !== 'app.lua').map((f) => f.replace('.lua', '')).sort().reverse() }) });

  // Three updates in a row: each one's new directory must be followed.
  for (const n of [2, 3, 4]) {
    await oneReload(server(), ns, { tag: `c${n}`, barrier, save: () => update({ 'app.lua': appSource(`c${n}`) }) });
  }
  // A module only.
  const tag = (await who(ns)).tag;
  await oneReload(server(), ns, { tag, util: 'u2', barrier, save: () => update({ 'util.lua': moduleSource('u2') }) });
  // A new file, required by the new app.lua: its visible symlink appears after the swap.
  await oneReload(server(), ns, {
    tag: 'c5',
    util: 'u2+x1',
    barrier,
    save: () => update({ 'app.lua': appSource('c5', { requires: ['util', 'extra'] }), 'extra.lua': moduleSource('x1') }),
  });
  // The old timestamped directories are gone and nothing else is left behind.
  assert.deepEqual(fs.readdirSync(app).filter((n) => n.startsWith('..2026')).length, 1);
});

function server() { return servers.at(-1); }

test('a broken ConfigMap update keeps the old code and turns /health 503; the next update fixes it', T, async () => {
  const app = path.join(tmpRoot('configmap-broken'), 'app');
  fs.mkdirSync(app);
  let files = { 'app.lua': appSource('b1'), 'util.lua': moduleSource('u1') };
  atomicWrite(app, files);
  const { ns } = await start(app);
  await served(ns, 'b1');
  files = { ...files, 'app.lua': appSource('b2').replace('return neffos.server {', 'local x = nil; x.boom = 1\nreturn neffos.server {') };
  atomicWrite(app, files);
  const h = await eventually(async () => {
    const r = await rawHttp(server().port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    return r.status === 503 && r;
  }, '/health 503', 10_000, 20);
  assert.match(h.body, /reload failed: .*app\.lua:\d+: attempt to index a nil value/);
  assert.equal((await who(ns)).tag, 'b1');
  files = { ...files, 'app.lua': appSource('b3') };
  atomicWrite(app, files);
  await served(ns, 'b3');
  assert.equal((await rawHttp(server().port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')).status, 200);
});

// ---- an operator's directory replace ----------------------------------------------------

function fill(dir, tag) {
  fs.mkdirSync(dir, { recursive: true });
  write(path.join(dir, 'util.lua'), moduleSource(`${tag}-util`));
  write(path.join(dir, 'app.lua'), appSource(tag));
}

test('mv app app.old, then mv app.new app: one reload, and edits of the new directory reload', T, async () => {
  const root = tmpRoot('replace');
  const app = path.join(root, 'app');
  fill(app, 'r1');
  const { ns } = await start(app);
  await served(ns, 'r1');
  const barrier = (tag) => write(path.join(app, 'app.lua'), appSource(tag));
  let round = 1;
  for (const n of [2, 3]) {
    await oneReload(server(), ns, {
      tag: `r${n}`,
      barrier,
      async save() {
        fill(path.join(root, 'app.new'), `r${n}`);
        fs.renameSync(app, path.join(root, `app.old${round++}`));
        await sleep(PAUSE_MS);
        fs.renameSync(path.join(root, 'app.new'), app);
      },
    });
  }
});

test('mv app app.old, then mkdir app and the files written into it: one reload, /health 200', T, async () => {
  const root = tmpRoot('replace-inplace');
  const app = path.join(root, 'app');
  fill(app, 'm1');
  const { ns } = await start(app);
  await served(ns, 'm1');
  await oneReload(server(), ns, {
    tag: 'm2',
    barrier: (tag) => write(path.join(app, 'app.lua'), appSource(tag)),
    async save() {
      fs.renameSync(app, path.join(root, 'app.old'));
      await sleep(PAUSE_MS);
      fs.mkdirSync(app);
      await sleep(PAUSE_MS);
      write(path.join(app, 'util.lua'), moduleSource('m2-util'));
      write(path.join(app, 'app.lua'), appSource('m2'));
    },
  });
  assert.equal((await who(ns)).util, 'm2-util');
});

// ---- no inotify: polling --------------------------------------------------------------

test('--no-watch --watch-poll-ms: saves are found by polling, one reload each, /health 200', T, async () => {
  const app = path.join(tmpRoot('poll'), 'app');
  fill(app, 'p1');
  const { ns } = await start(app, ['--no-watch', '--watch-poll-ms', '50']);
  await served(ns, 'p1');
  const barrier = (tag) => write(path.join(app, 'app.lua'), appSource(tag));
  await oneReload(server(), ns, { tag: 'p2', barrier, save: () => write(path.join(app, 'app.lua'), appSource('p2')) });
  await oneReload(server(), ns, {
    tag: 'p3',
    barrier,
    async save() {
      write(path.join(app, 'app.lua'), '');
      await sleep(PAUSE_MS);
      write(path.join(app, 'app.lua'), appSource('p3'));
    },
  });
});
