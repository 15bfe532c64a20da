// The interop suite's core cases over TLS (issue 16 point 4): the same test files, run again
// with the harness in TLS mode (NEFFOS_TEST_TLS, lib/server.mjs): each server is started with
// --tls-cert/--tls-key on its --listen address, is ready only once a TLS handshake with the
// test CA succeeds, and neffos.js, the raw `ws` client and the raw HTTP requests all speak
// wss:// / https:// trusting that CA. A test CA made here with `openssl` (lib/tls.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, withTimeout } from './lib/server.mjs';
import { makeTestCA } from './lib/tls.mjs';

// The handshake, namespaces, asks both ways (bodies up to 64 KiB), rooms and broadcast, forced
// actions, ordering, native messages and garbage frames (1007, 1009).
const CORE = ['handshake', 'namespaces', 'ask', 'parity_rooms', 'parity_broadcast', 'parity_forced', 'ordering',
  'parity_native', 'garbage'];

let ca;
before(() => {
  ca = makeTestCA();
  const { cert, key } = ca.issue('tls');
  copyFileSync(cert, path.join(ca.dir, 'tls.pem'));
  copyFileSync(key, path.join(ca.dir, 'tls.key'));
});
after(() => ca?.cleanup());

function runNodeTest(file) {
  // A test runner of its own: without NODE_TEST_CONTEXT, which would make it report to ours.
  const env = { ...process.env, NEFFOS_TEST_TLS: ca.dir };
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--test', '--test-reporter=tap', file], {
      cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    proc.stderr.setEncoding('utf8').on('data', (d) => { out += d; });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 240_000);
    proc.once('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out }); });
  });
}

for (const name of CORE) {
  test(`${name}.test.mjs over TLS (wss://, https://)`, { timeout: 250_000 }, async () => {
    const r = await withTimeout(runNodeTest(path.join(ROOT, 'spec', 'interop', `${name}.test.mjs`)), 245_000, name);
    const pass = Number(/^# pass (\d+)/m.exec(r.out)?.[1] ?? 0);
    const fail = Number(/^# fail (\d+)/m.exec(r.out)?.[1] ?? -1);
    assert.ok(r.code === 0 && fail === 0 && pass > 0,
      `${name} over TLS: exit ${r.code} ${r.signal ?? ''}, ${pass} passed, ${fail} failed\n${r.out.slice(-6000)}`);
  });
}
