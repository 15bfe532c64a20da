// The benchmark keeps working: every neffos-bench mode, briefly, against the bench app on the
// test build (ASan), asserting correctness only (no errors, no loss, order kept) — speed is
// measured by spec/bench/run.sh on a Release build, never by a timed test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, useServer } from '../interop/lib/server.mjs';

const BENCH = path.join(process.env.NEFFOS_BUILD || path.join(ROOT, 'build'), 'neffos-bench');
const h = useServer(path.join(ROOT, 'spec', 'bench', 'app.lua'), { args: ['--log-level', 'warn', '--no-watch'] });
const T = { timeout: 60_000 };

function bench(args) {
  return new Promise((resolve, reject) => {
    execFile(BENCH, [...args, '--server-pid', String(h.server.proc.pid)], { timeout: 45_000 }, (err, stdout, stderr) => {
      const last = stdout.trim().split('\n').pop();
      try {
        resolve({ code: err ? err.code : 0, json: JSON.parse(last), out: stdout + stderr });
      } catch (e) {
        reject(new Error(`no JSON last line from neffos-bench ${args[0]}:\n${stdout}\n${stderr}`));
      }
    });
  });
}

// First, on the fresh server: after the other modes' connections close, the server gives
// their memory back (host.c, sweep_trim), which can land inside this test's hold and make
// the RSS after lower than before (seen on a Release build), leaving nothing to report.
test('idle: connections are held and the server RSS per connection is reported', T, async () => {
  const r = await bench(['idle', '--url', h.server.url(), '--namespace', 'v1', '--conns', '200', '--seconds', '1']);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.json.held, 200);
  assert.ok(r.json.bytes_per_conn > 0, r.out);
});

test('ask: closed-loop asks are all answered, with a latency histogram and a JSON summary', T, async () => {
  const r = await bench(['ask', '--url', h.server.url(), '--namespace', 'v1', '--event', 'echo',
    '--conns', '10', '--inflight', '4', '--size', '64', '--seconds', '2', '--warmup', '0']);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.json.errors, 0);
  assert.ok(r.json.replies > 0 && r.json.p50_us > 0 && r.json.p99_us >= r.json.p50_us, r.out);
  // The shape: quantiles in order, and every connection's mean between them.
  assert.ok(r.json.p1_us <= r.json.p10_us && r.json.p10_us <= r.json.p50_us && r.json.p50_us <= r.json.p90_us &&
    r.json.p90_us <= r.json.p99_us, r.out);
  assert.ok(r.json.conn_mean_us_min > 0 && r.json.conn_mean_us_min <= r.json.conn_mean_us_max &&
    r.json.conn_mean_us_max <= r.json.max_us, r.out);
});

test('broadcast: every receiver gets every message, in order', T, async () => {
  const r = await bench(['broadcast', '--url', h.server.url(), '--namespace', 'v1', '--event', 'shout',
    '--recv-event', 'chat', '--receivers', '100', '--seconds', '2']);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.json.lost, 0);
  assert.equal(r.json.order_violations, 0);
  assert.ok(r.json.deliveries > 0 && r.json.deliveries === r.json.expected, r.out);
});

test('run.sh: one short run of two cases gives a table with a median and a spread for each figure', T, async () => {
  const build = process.env.NEFFOS_BUILD || path.join(ROOT, 'build');
  const out = await new Promise((resolve, reject) => {
    execFile('bash', [path.join(ROOT, 'spec', 'bench', 'run.sh')], {
      timeout: 50_000,
      env: { ...process.env, BUILD: path.relative(ROOT, build), SKIP_BUILD: '1', CASES: 'ask64 bc10', RUNS: '1',
             BENCH_SECONDS: '1', PORT: String(20000 + (process.pid % 20000)) },
    }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  const rows = out.split('\n').filter((l) => /^\| (ask64|bc10) \|/.test(l));
  assert.ok(rows.length >= 8, out);
  assert.match(out, /\| ask64 \| replies\/s \| [0-9,]+ \[[0-9,]+\.\.[0-9,]+\] \|/);
  assert.match(out, /\| bc10 \| lost \| 0 \[0\.\.0\] \|/);
});

// run.sh with a stand-in for the server binary (NEFFOS_BIN): a shell script that records its
// arguments and, as `old`, refuses --workers as every revision before issue 15 does (a BASELINE=).
function runSh(extraEnv, { refuseWorkers }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'neffos-runsh-'));
  const argsLog = path.join(dir, 'args');
  const real = process.env.NEFFOS_BIN || path.join(process.env.NEFFOS_BUILD || path.join(ROOT, 'build'), 'neffos');
  const wrapper = path.join(dir, 'neffos');
  writeFileSync(wrapper, `#!/bin/sh
echo "$*" >> '${argsLog}'
${refuseWorkers ? `case " $* " in *" --workers "*) echo "neffos: unknown option '--workers' (see neffos --help)" >&2; exit 2 ;; esac` : ''}
exec '${real}' "$@"
`, { mode: 0o755 });
  const build = process.env.NEFFOS_BUILD || path.join(ROOT, 'build');
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(ROOT, 'spec', 'bench', 'run.sh')], {
      timeout: 50_000,
      env: { ...process.env, BUILD: path.relative(ROOT, build), SKIP_BUILD: '1', NEFFOS_BIN: wrapper, CASES: 'ask64',
             RUNS: '1', BENCH_SECONDS: '1', ...extraEnv },
    }, (err, stdout, stderr) => {
      let args = '';
      try { args = readFileSync(argsLog, 'utf8'); } catch { /* never started */ }
      rmSync(dir, { recursive: true, force: true });
      if (err) reject(new Error(`${err.message}\n${stderr}`)); else resolve({ out: stdout, args });
    });
  });
}

test('run.sh: a server from before --workers (a BASELINE) is started without the flag', T, async () => {
  const r = await runSh({ PORT: String(22000 + (process.pid % 20000)) }, { refuseWorkers: true });
  assert.doesNotMatch(r.args, /--workers/, r.args);
  assert.match(r.out, /\| ask64 \| replies\/s \| [0-9,]+ \[[0-9,]+\.\.[0-9,]+\] \|/, r.out);
});

test('run.sh: WORKERS=1,2 starts one column with the default and one with --workers 2', T, async () => {
  const r = await runSh({ WORKERS: '1,2', PORT: String(23000 + (process.pid % 20000)) }, { refuseWorkers: false });
  const lines = r.args.trim().split('\n');
  assert.equal(lines.length, 2, r.args);
  assert.equal(lines.filter((l) => /--workers 2(\s|$)/.test(l)).length, 1, r.args);
  assert.equal(lines.filter((l) => !/--workers/.test(l)).length, 1, r.args);
  assert.match(r.out, /\| ask64 \| replies\/s \| [0-9,]+ \[[0-9,]+\.\.[0-9,]+\] \| [0-9,]+ \[[0-9,]+\.\.[0-9,]+\] \| [0-9.]+x \|/, r.out);
});

test('floor: the plain C echo answers the same asks (the round trip run.sh quotes the server against)', T, async () => {
  const { spawn } = await import('node:child_process');
  const port = 21000 + (process.pid % 20000);
  const url = `ws://127.0.0.1:${port}/echo`;
  const floor = spawn(BENCH, ['floor', '--url', url, '--seconds', '20'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    // Listening once it says so on stderr (bounded: the test's own timeout).
    await new Promise((resolve, reject) => {
      floor.stderr.on('data', (d) => { if (/echo on/.test(String(d))) resolve(); });
      floor.on('exit', (code) => reject(new Error(`floor exited ${code}`)));
    });
    const r = await new Promise((resolve, reject) => {
      execFile(BENCH, ['ask', '--url', url, '--namespace', 'v1', '--event', 'echo', '--conns', '1', '--inflight', '1',
        '--size', '64', '--seconds', '1', '--warmup', '0'], { timeout: 30_000 }, (err, stdout, stderr) => {
        try { resolve({ code: err ? err.code : 0, json: JSON.parse(stdout.trim().split('\n').pop()), out: stdout + stderr }); }
        catch (e) { reject(new Error(`no JSON from neffos-bench ask:\n${stdout}\n${stderr}`)); }
      });
    });
    assert.equal(r.code, 0, r.out);
    assert.equal(r.json.errors, 0);
    assert.ok(r.json.replies > 0 && r.json.p50_us > 0, r.out);
  } finally {
    floor.kill('SIGKILL');
  }
});
