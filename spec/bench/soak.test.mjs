// The soak benchmark runs (issue 11 point 13): spec/bench/soak.mjs for a few seconds against the
// test build, legitimate clients asking while hostile ones cycle through the attacks. It proves
// the benchmark works, that no legitimate ask is lost and that the server stays up; no speed or
// memory figure is asserted (spec/bench/soak.sh on a Release build reports those).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ROOT, BIN } from '../interop/lib/server.mjs';

test('soak: legit asks all answered while hostile clients attack; the server stays up', { timeout: 180_000 }, async () => {
  const { code, out } = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'spec', 'bench', 'soak.mjs')], {
      timeout: 170_000,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, NEFFOS_BIN: BIN, NEFFOS_ROOT: ROOT, SOAK_SECONDS: '4', LEGIT: '5', HOSTILE: '8', NOFILE: '256',
             // The pattern attack holds the loop for one instruction budget per message; under ASan on a
             // busy machine the default 100M is 4-7 s, and three in a row outlast a legit ask's 30 s.
             SERVER_ARGS: '--lua-instruction-limit 10000000',
             ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0` },
    }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, out: `${stdout}\n${stderr}` }));
  });
  const last = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  assert.ok(last, `a JSON line from soak.mjs:\n${out}`);
  const r = JSON.parse(last);
  assert.equal(code, 0, out);
  assert.ok(r.asks_sent > 0, out);
  assert.equal(r.asks_answered, r.asks_sent, 'every legit ask answered');
  assert.equal(r.ask_errors, 0);
  assert.equal(r.server_up, true);
  // Every attack ran at least once (HOSTILE = the number of attacks, each worker starts on its own);
  // one may end unfinished (an upgrade left in the backlog while the descriptor attack fills the server).
  assert.deepEqual(Object.keys(r.attacks).sort(),
    ['descriptors', 'fragments', 'garbage', 'longNames', 'parked', 'pattern', 'pingFlood', 'slowloris']);
});
