// The examples' harness (lib/example.mjs) stops the servers it starts even when the test process
// ends abruptly: a dependency that calls process.exit (playwright-core on a Node.js it refuses)
// skips every `after` hook, and the example servers used to keep running after the failed test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { ROOT, withTimeout, eventually } from './lib/example.mjs';

/** Running, not a zombie (an orphan waits for init to reap it). */
function alive(pid) {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('an example server started by the harness dies with a test process that calls process.exit', async () => {
  const code = `import { startExample } from './spec/examples/lib/example.mjs';
    const ex = await startExample('chat');
    console.log('PID', ex.pid);
    process.exit(3);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  for (const s of [child.stdout, child.stderr]) s.setEncoding('utf8').on('data', (d) => { out += d; });
  const exit = await withTimeout(new Promise((resolve) => child.once('exit', resolve)), 20_000, 'the test process exits');
  assert.equal(exit, 3, out);
  const pid = Number(/^PID (\d+)$/m.exec(out)?.[1]);
  assert.ok(pid > 0, `the child printed the server's pid:\n${out}`);
  try {
    await eventually(() => !alive(pid), `server ${pid} is gone after its test process exited`, 5000);
  } finally {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
});
