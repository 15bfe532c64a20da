// Starts an example the way its README says (`examples/NAME/run.sh`), on a free loopback port,
// so the tests cover run.sh and its static dir too; plus bounded waits and a Chromium launcher.
// Reuses the interop harness (spec/interop/lib/server.mjs) for the binary, the root and timeouts.
//
// Environment: NEFFOS_BIN (the server, passed on to run.sh), NEFFOS_BUILD (artifacts go to
// $NEFFOS_BUILD/artifacts; default build/).
import { before, after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, BIN, sleep, withTimeout, eventually, freePort } from '../../interop/lib/server.mjs';

export { ROOT, BIN, sleep, withTimeout, eventually };
export const ARTIFACTS = path.resolve(ROOT, process.env.NEFFOS_BUILD || 'build', 'artifacts');

export function artifact(name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:/;

/** Runs examples/NAME/run.sh with PORT set; resolves once the server logs that it listens.
 *  `args` go to the server (run.sh passes them on); `tls`: they make it serve TLS (https, wss). */
export async function startExample(name, readyMs = 10_000, { args = [], tls = false } = {}) {
  const port = await freePort();
  // run.sh ends with `exec neffos ...`, so this process becomes the server and gets our signals.
  const proc = spawn('sh', [path.join(ROOT, 'examples', name, 'run.sh'), ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), NEFFOS_BIN: BIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ex = {
    port, pid: proc.pid, out: '', exit: null,
    url: (p = '/echo') => `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}${p}`,
    httpUrl: (p = '/') => `${tls ? 'https' : 'http'}://127.0.0.1:${port}${p}`,
    logs: () => ex.out,
    async stop() {
      if (!ex.exit) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (SANITIZER.test(ex.out)) throw new Error(`sanitizer report from the server:\n${ex.out.slice(-8000)}`);
    },
  };
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(ex.exit = { code, signal })));
  // A test process that ends abruptly (process.exit: playwright-core does so when it refuses the
  // Node.js it runs on) never runs its `after` hooks: the server must not outlive it.
  const reap = () => { if (!ex.exit) proc.kill('SIGKILL'); };
  process.once('exit', reap);
  exited.then(() => process.off('exit', reap));
  for (const s of [proc.stdout, proc.stderr]) s.setEncoding('utf8').on('data', (d) => { ex.out += d; });
  const end = Date.now() + readyMs;
  while (!/listening on/.test(ex.out)) {
    if (ex.exit || Date.now() > end) {
      await ex.stop().catch(() => {});
      throw new Error(`examples/${name}/run.sh did not start (exit ${JSON.stringify(ex.exit)}):\n${ex.out}`);
    }
    await sleep(50);
  }
  return ex;
}

/** Headless Debian Chromium through playwright-core; each context gets a fresh profile. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return withTimeout(chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  }), 30_000, 'launching Chromium');
}

/**
 * For a browser test file: starts examples/<name> and Chromium before the tests, stops both after.
 * Returns a handle whose .ex and .browser are set once `before` has run.
 */
export function useExampleInBrowser(name) {
  const h = { ex: null, browser: null };
  before(async () => {
    h.ex = await startExample(name);
    h.browser = await launchChromium();
  });
  after(async () => {
    await h.browser?.close();
    await h.ex?.stop();
  });
  return h;
}

/**
 * A new page (in its own context) at `url`; `errors` collects page errors and HTTP answers >= 400,
 * which a test asserts empty at the end.
 */
export async function openPage(browser, url, viewport, waitMs = 10_000) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.setDefaultTimeout(waitMs);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  await page.goto(url);
  return { ctx, page, errors };
}
