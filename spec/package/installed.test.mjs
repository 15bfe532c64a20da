// The Debian package, tested from its installed files only: .ci/package builds it with cpack and installs
// it (apt-get install ./neffos_*.deb) before ctest runs. Nothing here reads the source tree's server or
// Lua library: /usr/bin/neffos must find /usr/share/neffos/lua by itself and serve an installed example
// to the real neffos.js client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const BIN = '/usr/bin/neffos';
process.env.NEFFOS_BIN = BIN;
const { startServer, dial, withTimeout, T } = await import('../interop/lib/server.mjs');

test('the package is installed, and its binary is the one this tree builds', () => {
  const status = execFileSync('dpkg-query', ['-W', '-f', '${Status} ${Version}', 'neffos']).toString();
  assert.match(status, /^install ok installed /, 'run .ci/package first (it builds and installs the .deb)');
  const cmake = readFileSync(new URL('../../CMakeLists.txt', import.meta.url), 'utf8');
  const version = cmake.match(/project\(neffos_c VERSION ([0-9.]+)/)[1];
  assert.ok(status.endsWith(` ${version}`), `installed ${status}, tree ${version}`);
});

test('neffos --version names the versions of Lua, libevent, wslay, hiredis and OpenSSL', () => {
  const out = execFileSync(BIN, ['--version']).toString();
  for (const re of [/^neffos \d+\.\d+\.\d+/m, /Lua 5\.4\.\d+/, /libevent \d+\.\d+/, /wslay \d+\.\d+/, /hiredis \d+\.\d+\.\d+/,
    /OpenSSL 3\.\d+/]) {
    assert.match(out, re);
  }
});

test('the package depends on the TLS libraries the binary links (dpkg-shlibdeps)', () => {
  const deps = execFileSync('dpkg-query', ['-W', '-f', '${Depends}', 'neffos']).toString();
  for (const lib of ['libssl3', 'libevent-openssl-2.1-7']) assert.match(deps, new RegExp(`\\b${lib}\\b`), deps);
});

test('the installed files are in their FHS places: Lua library, editor annotations, luacheck standard, examples, docs, man page, systemd unit', () => {
  for (const f of ['/usr/share/neffos/lua/neffos.lua', '/usr/share/neffos/meta/neffos.lua',
    '/usr/share/neffos/luacheck/neffos_app.lua', '/usr/share/neffos/examples/chat/app.lua',
    '/usr/share/neffos/examples/chat/public/neffos.min.js', '/usr/share/doc/neffos/README.md',
    '/usr/share/doc/neffos/CHANGELOG.md', '/usr/share/man/man1/neffos.1', '/usr/lib/systemd/system/neffos.service']) {
    assert.ok(existsSync(f), `${f} is missing`);
  }
  const unit = readFileSync('/usr/lib/systemd/system/neffos.service', 'utf8');
  for (const line of ['Restart=on-failure', 'LimitNOFILE=', 'ExecReload=/bin/kill -HUP $MAINPID', 'NoNewPrivileges=yes']) {
    assert.ok(unit.includes(line), `the unit lacks ${line}`);
  }
  // systemd's own checker: unknown keys, bad values, a missing ExecStart binary.
  const verify = spawnSync('systemd-analyze', ['verify', '/usr/lib/systemd/system/neffos.service'], { encoding: 'utf8' });
  if (!verify.error) assert.equal(verify.status, 0, verify.stderr);
  assert.match(readFileSync('/usr/share/man/man1/neffos.1', 'utf8'), /\\-\\-max\\-message\\-bytes/, 'the man page has the flags of --help');
});

test('the installed server serves an installed example to neffos.js', T, async (t) => {
  const server = await startServer('/usr/share/neffos/examples/echo', { args: ['--no-watch', '--log-level', 'debug'] });
  t.after(() => server.stop());
  assert.match(server.err, /Lua library: \/usr\/bin\/\.\.\/share\/neffos\/lua\/neffos\.lua/, 'not the installed Lua library');
  const conn = await dial(t, server.url(), { v1: {} });
  const ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
  const reply = await withTimeout(ns.ask('echo', 'hi'), 5000, 'ask echo');
  assert.equal(reply.Body, 'echo back: hi');
});

test('the installed neffos runs the specs of an installed example, and new + test pass', T, async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const echo = spawnSync(BIN, ['test', '/usr/share/neffos/examples/echo'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(echo.status, 0, echo.stdout + echo.stderr);
  const dir = mkdtempSync(path.join(tmpdir(), 'neffos-pkg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = spawnSync('sh', ['-c', `${BIN} new demo && ${BIN} test demo`], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
