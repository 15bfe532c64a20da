// `neffos new DIR` (bindings/cmd_new.c, scripts/neffos/new.lua): `neffos new demo && neffos test demo`
// passes at once in an empty temporary directory; the starter is luacheck-clean; an existing,
// non-empty DIR is refused and left as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BIN } from '../interop/lib/server.mjs';

test('neffos new demo && neffos test demo', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'neffos-new-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('sh', ['-c', `"${BIN}" new demo && "${BIN}" test demo`], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /2 successes \/ 0 failures \/ 0 errors/);
  for (const f of ['app.lua', 'spec/app_spec.lua', '.luacheckrc', '.luarc.json', 'README.md']) {
    assert.ok(existsSync(path.join(dir, 'demo', f)), `demo/${f}`);
  }
  // The editor finds the API's annotations, and luacheck the apps' standard.
  const luarc = JSON.parse(readFileSync(path.join(dir, 'demo', '.luarc.json'), 'utf8'));
  assert.ok(existsSync(path.join(luarc['workspace.library'][0], 'neffos.lua')), JSON.stringify(luarc));
  assert.match(readFileSync(path.join(dir, 'demo', '.luacheckrc'), 'utf8'), /dofile\(".*neffos_app\.lua"\)/);
  const readme = readFileSync(path.join(dir, 'demo', 'README.md'), 'utf8');
  assert.ok(readme.includes('neffos demo --listen 127.0.0.1:8080'), readme);
  assert.ok(readme.includes('neffos test demo'), readme);
  const check = spawnSync(BIN, ['--check', 'demo'], { cwd: dir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);
  const lc = spawnSync('luacheck', ['.'], { cwd: path.join(dir, 'demo'), encoding: 'utf8' });
  if (!lc.error) assert.equal(lc.status, 0, lc.stdout);
});

test('an existing, non-empty directory is refused and kept', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'neffos-new-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'app.lua'), 'mine');
  const r = spawnSync(BIN, ['new', dir], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /exists and is not empty/);
  assert.equal(readFileSync(path.join(dir, 'app.lua'), 'utf8'), 'mine');
});
