// The snippets of docs/lua-api.md for the seeds' API extras (Controllers, Tables as bodies,
// Refused upgrades, Reconnections) run as written: each is extracted from the document,
// passes `neffos --check`, and the first three are served and driven with neffos.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, BIN, ROOT, startServer, dial, withTimeout, eventually, rawHttp } from './lib/server.mjs';

const doc = readFileSync(path.join(ROOT, 'docs', 'lua-api.md'), 'utf8');
const from = doc.indexOf('### Controllers');
const to = from + doc.slice(from).search(/\n## /);   // the next section after these subsections
assert.ok(from > 0 && to > from, 'the sections are in docs/lua-api.md');
const snippets = [...doc.slice(from, to).matchAll(/```lua\n([\s\S]*?)```/g)].map((m) => m[1]);

/** Writes a snippet as an app file; removed when the test ends. */
function appOf(t, i) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-doc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'app.lua');
  writeFileSync(file, snippets[i]);
  return file;
}

test('four snippets, each passes neffos --check', T, (t) => {
  assert.equal(snippets.length, 4);
  for (let i = 0; i < snippets.length; i++) {
    const r = spawnSync(BIN, ['--check', appOf(t, i)], { cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, `snippet ${i + 1}: ${r.stdout}${r.stderr}`);
  }
});

test('Controllers snippet: welcome and a per-connection counter', T, async (t) => {
  const s = await startServer(appOf(t, 0), { args: ['--no-watch'] });
  t.after(() => s.stop());
  const got = [];
  const conn = await dial(t, s.url(), { chat: { welcome: (ns, m) => { got.push(m.Body); } } },
    { headers: { 'X-User': 'ann' } });
  const ns = await withTimeout(conn.connect('chat'), 5000, 'connect chat');
  await eventually(() => got.length === 1, 'welcome');
  assert.equal(got[0], 'hi ann');
  assert.equal((await ns.ask('say', 'x')).Body, 'ann #1: x');
  assert.equal((await ns.ask('say', 'y')).Body, 'ann #2: y');
});

test('Tables snippet: a JSON echo, and a binary codec', T, async (t) => {
  const s = await startServer(appOf(t, 1), { args: ['--no-watch'], endpoint: '/json' });
  t.after(() => s.stop());
  const seen = [];
  const conn = await dial(t, s.url('/json'), { v1: { seen: (ns, m) => { seen.push(JSON.parse(m.Body)); } } });
  const ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
  assert.deepEqual(JSON.parse((await ns.ask('echo', '{"n":1}')).Body), { ok: true });
  await eventually(() => seen.length === 1, 'seen');
  assert.equal(seen[0].n, 1);
  const doubled = [];
  const pconn = await dial(t, s.url('/points'), { v1: { doubled: (n, m) => { doubled.push(Buffer.from(m.Body)); } } });
  const pns = await withTimeout(pconn.connect('v1'), 5000, 'connect v1 on /points');
  const body = Buffer.alloc(8);
  body.writeInt32BE(5, 0); body.writeUInt16BE(2, 4); body.write('pq', 6);
  pns.emitBinary('double', new Uint8Array(body));
  await eventually(() => doubled.length === 1, 'doubled');
  assert.equal(doubled[0].readInt32BE(0), 10);
  assert.equal(doubled[0].subarray(6).toString(), 'pq');
});

test('Refused upgrades snippet: the hook logs the refusal', T, async (t) => {
  const s = await startServer(appOf(t, 2), { args: ['--no-watch'] });
  t.after(() => s.stop());
  await rawHttp(s.port, 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await eventually(() => /refused \/echo from 127\.0\.0\.1:\d+ \(bad_request\): 400 expected a WebSocket upgrade/.test(s.err),
    `the hook's line in the log:\n${s.err}`);
});
