// One save is one reload (issue 12 point 10), whatever the editor's steps and however
// long they are apart: a truncate, then a write that lands well past the watcher's
// debounce (a loaded machine, a network file system), of app.lua and of a module; vim's
// rename dance (the file renamed to a backup, a new file written slowly, the backup
// deleted); a module still being written when app.lua lands. Each episode must give
// exactly one reload (on_reload and the top level run once), /health must answer 200 all
// along (polled throughout), and an intermediate state (an empty, missing or half-written
// file) must never be served nor reported. "Exactly one" is checked after a barrier
// save, not after a wait (lib/episode.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, startServer, dial, withTimeout, eventually, rawHttp, sleep } from '../interop/lib/server.mjs';
import { appSource, moduleSource, who, served, oneReload, slowWrite, write } from './lib/episode.mjs';

// Far past the watcher's 10 ms debounce, well inside the 500 ms the server gives a
// save to finish (bindings/reloader.h).
const PAUSE_MS = 100;

let server, dir, conn, ns;
const file = (name) => path.join(dir, name);
const barrier = (tag) => write(file('app.lua'), appSource(tag));

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'neffos-save-'));
  write(file('util.lua'), moduleSource('u1'));
  write(file('app.lua'), appSource('a1'));
  server = await startServer(dir);
  conn = await dial(null, server.url(), { v1: {} });
  ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
  await served(ns, 'a1', 'u1');
});

after(async () => {
  if (conn && !conn.isClosed()) conn.close();
  if (server) await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('truncate, a pause past the debounce, then write: one reload, /health stays 200', T, async () => {
  for (const n of [2, 3, 4]) {
    await oneReload(server, ns, {
      tag: `a${n}`,
      barrier,
      async save() {
        write(file('app.lua'), '');
        await sleep(PAUSE_MS);
        write(file('app.lua'), appSource(`a${n}`));
      },
    });
  }
});

test('the same with a required module: its empty state is never served', T, async () => {
  const tag = (await who(ns)).tag;
  await oneReload(server, ns, {
    tag,
    util: 'u2',
    barrier,
    async save() {
      write(file('util.lua'), '');
      await sleep(PAUSE_MS);
      write(file('util.lua'), moduleSource('u2'));
    },
  });
});

test('vim\'s rename dance (backup rename, slow write of a new file, backup deleted): one reload', T, async () => {
  await oneReload(server, ns, {
    tag: 'vim1',
    barrier,
    async save() {
      fs.renameSync(file('app.lua'), file('app.lua~'));
      await sleep(PAUSE_MS);
      await slowWrite(fs, file('app.lua'), appSource('vim1'), PAUSE_MS);
      fs.unlinkSync(file('app.lua~'));
    },
  });
});

test('a module still being written when app.lua lands (a copy of several files): one reload, never the partial module', T, async () => {
  // util.lua's first half is a valid chunk that would load (as `true`) and serve.
  const full = 'local M = { name = "u3" }\nreturn M\n';
  await oneReload(server, ns, {
    tag: 'copy1',
    util: 'u3',
    barrier,
    async save() {
      const fd = fs.openSync(file('util.lua'), 'w');
      try {
        fs.writeSync(fd, full.slice(0, full.indexOf('return')));
        write(file('app.lua'), appSource('copy1'));
        await sleep(PAUSE_MS);
        fs.writeSync(fd, full.slice(full.indexOf('return')));
      } finally {
        fs.closeSync(fd);
      }
    },
  });
});

test('a save that really breaks the app still turns /health 503, after the settle, and a fix clears it', T, async () => {
  const { tag } = await who(ns);
  write(file('app.lua'), appSource('broken').replace('return neffos.server {', 'local x = nil; x.boom = 1\nreturn neffos.server {'));
  const h = await eventually(async () => { const r = await rawHttp(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'); return r.status === 503 && r; }, '/health 503', 10_000, 20);
  assert.match(h.body, /reload failed: .*app\.lua:\d+: attempt to index a nil value/);
  assert.equal((await who(ns)).tag, tag, 'the old code serves');
  // Undoing the broken save (the very bytes that serve) needs no reload, only health.
  const before = await who(ns);
  write(file('app.lua'), appSource(tag));
  await eventually(async () => (await rawHttp(server.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')).status === 200, '/health 200 again', 10_000, 20);
  assert.equal((await who(ns)).reloads, before.reloads, 'identical files: no reload');
});
