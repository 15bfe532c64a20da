// Test harness for the interop suite: starts the built `neffos` binary on a free loopback
// port, waits until it accepts TCP connections, and stops it; plus client helpers
// (neffos.js, a raw `ws` client, a raw HTTP request) and `withTimeout` so nothing can hang.
//
// Environment (set by spec/tests.cmake; the defaults suit a manual run from the repo root):
//   NEFFOS_BIN   the server binary       (default: <root>/build/neffos)
//   NEFFOS_ROOT  the repository root     (default: three levels above this file)
//   NEFFOS_TEST_TLS  a directory with ca.pem, tls.pem and tls.key (lib/tls.mjs): every server is
//                started with --tls-cert/--tls-key, every client speaks wss:// / https:// trusting
//                ca.pem (spec/interop/tls_core.test.mjs runs the core files so)
//   NEFFOS_WORKERS  N: every server runs with --workers N (unless a test passes --workers
//                itself); spec/tests.cmake registers the suites again with NEFFOS_WORKERS=2

import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import * as neffos from 'neffos.js';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(process.env.NEFFOS_ROOT || path.join(here, '..', '..', '..'));
export const BIN = path.resolve(ROOT, process.env.NEFFOS_BIN || path.join('build', 'neffos'));
export { neffos };

/** TLS mode (NEFFOS_TEST_TLS), or null. */
export const TLS = process.env.NEFFOS_TEST_TLS ? {
  ca: readFileSync(path.join(process.env.NEFFOS_TEST_TLS, 'ca.pem')),
  cert: path.join(process.env.NEFFOS_TEST_TLS, 'tls.pem'),
  key: path.join(process.env.NEFFOS_TEST_TLS, 'tls.key'),
} : null;

/** --workers of every server this harness starts (NEFFOS_WORKERS; 1 = the default). */
export const WORKERS = Number(process.env.NEFFOS_WORKERS || 1);

/** Per-test options for node:test: no single test may run longer than this. */
export const T = { timeout: 30_000 };

/** Path of a test app under spec/interop/apps. */
export function appPath(name) {
  return path.join(ROOT, 'spec', 'interop', 'apps', name);
}

/** The server's maximum message size: the default in host/core/nf_limits.h (one place, so the
 *  test follows the server's documented default instead of repeating the number). */
export function defaultMaxMessageBytes() {
  const src = readFileSync(path.join(ROOT, 'host', 'core', 'nf_limits.h'), 'utf8');
  const m = /\.max_message_bytes\s*=\s*(\d+)u?\s*(?:<<\s*(\d+))?/.exec(src);
  if (!m) throw new Error('cannot find .max_message_bytes in host/core/nf_limits.h');
  return Number(m[1]) * 2 ** Number(m[2] || 0);
}

/** Rejects with a clear error if `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` (sync or async) until it returns a truthy value; bounded in time. */
export async function eventually(fn, what, ms = 5000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`not reached within ${ms} ms: ${what}`);
    await sleep(every);
  }
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Does something accept TCP connections on 127.0.0.1:port (in TLS mode: complete a handshake)? */
export function canConnect(port) {
  return new Promise((resolve) => {
    const s = TLS ? tls.connect({ host: '127.0.0.1', port, ca: TLS.ca }) : net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { s.destroy(); resolve(ok); };
    s.setTimeout(500, () => done(false));
    s.once(TLS ? 'secureConnect' : 'connect', () => done(true));
    s.once('error', () => done(false));
  });
}

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:|WARNING: ThreadSanitizer/;

/** A running server process. */
class Server {
  constructor(proc, port, endpoint) {
    this.proc = proc;
    this.port = port;
    this.endpoint = endpoint;
    this.out = '';
    this.err = '';
    this.exit = null; // {code, signal} once exited
    this.stopping = false;
    proc.stdout.setEncoding('utf8').on('data', (d) => { this.out += d; });
    proc.stderr.setEncoding('utf8').on('data', (d) => { this.err += d; });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
    });
  }

  /** ws:// URL of `p` (default: the app's endpoint). */
  url(p = this.endpoint) { return `${TLS ? 'wss' : 'ws'}://127.0.0.1:${this.port}${p}`; }
  httpUrl(p = this.endpoint) { return `${TLS ? 'https' : 'http'}://127.0.0.1:${this.port}${p}`; }
  /** Everything the server has printed so far (stdout then stderr). */
  logs() { return this.out + this.err; }
  describe() {
    return `server ${BIN} on port ${this.port} (exit: ${JSON.stringify(this.exit)})\n` +
      `--- stdout ---\n${this.out.slice(-4000)}\n--- stderr ---\n${this.err.slice(-8000)}`;
  }

  /** Throws if the process has died (a crash is a failure of whatever test sees it). */
  assertAlive() {
    if (this.exit) throw new Error(`the server exited unexpectedly\n${this.describe()}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Throws if the server had died on its own
   *  before, or printed a sanitizer report. */
  async stop(graceMs = 5000) {
    const diedEarly = this.exit !== null && !this.stopping;
    this.stopping = true;
    if (!this.exit) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => { if (!this.exit) this.proc.kill('SIGKILL'); }, graceMs);
      await this.exited;
      clearTimeout(t);
    }
    if (diedEarly) throw new Error(`the server exited during the tests\n${this.describe()}`);
    if (SANITIZER.test(this.err)) throw new Error(`sanitizer report in the server's stderr\n${this.describe()}`);
    if (this.exit.signal === 'SIGKILL') throw new Error(`the server ignored SIGTERM for ${graceMs} ms\n${this.describe()}`);
  }
}

/**
 * Starts the server: `neffos [args...] --listen 127.0.0.1:PORT APP`, or `WRAPPER... neffos ...` with
 * `wrapper` (a command that execs the rest, e.g. ['prlimit', '--nofile=64:64', '--']: the process is
 * then the server itself). Retries on a port taken between choosing and binding; waits (bounded) for TCP accept.
 * With `port`, listens there (one attempt: a taken port is the caller's failure).
 */
export async function startServer(app, { args = [], endpoint = '/echo', readyMs = 10_000, env = {}, wrapper = [], port: fixedPort } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < (fixedPort ? 1 : 4); attempt++) {
    const port = fixedPort ?? await freePort();
    const tlsArgs = TLS ? ['--tls-cert', TLS.cert, '--tls-key', TLS.key] : [];
    const workers = WORKERS > 1 && !args.includes('--workers') ? ['--workers', String(WORKERS)] : [];
    const argv = [...wrapper, BIN, ...workers, ...args, ...tlsArgs, '--listen', `127.0.0.1:${port}`, app];
    const proc = spawn(argv[0], argv.slice(1), {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const srv = new Server(proc, port, endpoint);
    const spawnError = new Promise((resolve) => proc.once('error', resolve));
    const end = Date.now() + readyMs;
    let ready = false;
    while (!ready && !srv.exit && Date.now() < end) {
      const failed = await Promise.race([spawnError, sleep(50).then(() => null)]);
      if (failed) throw new Error(`cannot start ${BIN}: ${failed.message} (build it first, or set NEFFOS_BIN)`);
      ready = await canConnect(port);
    }
    if (ready) return srv;
    if (!srv.exit) {
      srv.stopping = true;
      proc.kill('SIGKILL');
      await srv.exited;
      throw new Error(`the server did not accept connections within ${readyMs} ms\n${srv.describe()}`);
    }
    lastErr = new Error(`the server exited before accepting connections\n${srv.describe()}`);
    if (!/in use|EADDRINUSE/i.test(srv.err)) throw lastErr;
  }
  throw lastErr;
}

/**
 * Starts a server for the whole test file (before) and stops it (after). Returns a handle
 * whose `.server` is set once the `before` hook has run.
 */
export function useServer(app, opts) {
  const handle = { server: null };
  before(async () => { handle.server = await startServer(app, opts); });
  after(async () => { if (handle.server) await handle.server.stop(); });
  return handle;
}

/** Starts `app` with `--no-watch` and `args` for test `t`; stopped when `t` ends. */
export async function serveFor(t, app, args = [], opts = {}) {
  const s = await startServer(app, { ...opts, args: ['--no-watch', ...args] });
  t.after(() => s.stop());
  return s;
}

/** A RawClient of test `t` connected to namespace `ns` of server `s` (its empty reply checked). */
export async function rawIn(t, s, ns = 'v1') {
  const c = await RawClient.connect(t, s.url());
  const reply = await c.ask(`$0;${ns};;_OnNamespaceConnect;0;0;`);
  if (reply !== '$0;;;;;;') throw new Error(`connect ${ns}: ${reply}`);
  return c;
}

/** One series of the server's /metrics as a number; `name` may carry labels
 *  (`neffos_limit_hits_total{limit="rooms"}`). Fails if the series is missing. */
export async function metricOf(s, name) {
  const r = await rawHttp(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} is not in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** neffos.js dial, bounded, closed when test `t` ends (pass null to close it yourself).
 *  Rejections are always Errors. */
export async function dial(t, url, handlers = {}, options = undefined, ms = 5000) {
  let conn;
  try {
    if (TLS) options = { ca: TLS.ca, ...options };
    conn = await withTimeout(neffos.dial(url, handlers, options), ms, `neffos.dial(${url})`);
  } catch (e) {
    if (e instanceof Error) throw e;
    throw new Error(`neffos.dial(${url}) failed: ${e?.message ?? e?.type ?? String(e)}`);
  }
  t?.after(() => { if (!conn.isClosed()) conn.close(); });
  return conn;
}

/** A WebSocket client that sees every frame: text or binary, and the close code. */
export class RawClient {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];    // received and not yet taken: {text, data: Buffer, binary}
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed (${code}) while waiting for a frame`));
      });
    });
    ws.on('error', () => {}); // reported through 'close'
    ws.on('message', (data, binary) => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.concat(data);
      const f = { data: buf, binary, text: binary ? undefined : buf.toString('utf8') };
      const w = this.waiters.shift();
      if (w) w.resolve(f); else this.frames.push(f);
    });
  }

  /** Opens a WebSocket to `url` (no neffos handshake yet). */
  static open(t, url, { headers, perMessageDeflate } = {}, ms = 5000) {
    // perMessageDeflate: `ws`'s own default (offered) unless given.
    const ws = new WebSocket(url, { headers, ...(perMessageDeflate === undefined ? {} : { perMessageDeflate }),
                                    ...(TLS ? { ca: TLS.ca } : {}) });
    const client = new RawClient(ws);
    t?.after(() => client.terminate());
    return withTimeout(new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (req, res) => reject(Object.assign(
        new Error(`upgrade refused: HTTP ${res.statusCode}`), { statusCode: res.statusCode })));
      ws.once('error', reject);
    }), ms, `WebSocket open ${url}`);
  }

  /** Opens and does the neffos handshake; returns the client with `.id` set. */
  static async connect(t, url, opts) {
    const c = await RawClient.open(t, url, opts);
    const ack = await c.handshake();
    if (!ack.startsWith('A')) throw new Error(`handshake refused: ${JSON.stringify(ack)}`);
    c.id = ack.slice(1);
    return c;
  }

  /** Sends "M" and returns the first frame's text. */
  async handshake() {
    this.sendText('M');
    const f = await this.next(5000, 'handshake answer');
    if (f.binary) throw new Error('handshake answer is a binary frame');
    return f.text;
  }

  sendText(s) { this.ws.send(s, { binary: false }); }
  /** Sends bytes as a text frame without any UTF-8 check (for invalid-UTF-8 tests). */
  sendTextBytes(buf) { this.ws.send(buf, { binary: false }); }
  sendBinary(buf) { this.ws.send(buf, { binary: true }); }

  /** The next frame, or a timeout error. */
  next(ms = 5000, what = 'a frame') {
    const f = this.frames.shift();
    if (f) return Promise.resolve(f);
    if (this.closeInfo) return Promise.reject(new Error(`connection closed (${this.closeInfo.code}) while waiting for ${what}`));
    let w;
    const p = new Promise((resolve, reject) => { w = { resolve, reject }; this.waiters.push(w); });
    return withTimeout(p, ms, what).catch((e) => {
      const i = this.waiters.indexOf(w);
      if (i >= 0) this.waiters.splice(i, 1);
      throw e;
    });
  }

  /** The next frame, which must be text; returns its text. */
  async nextText(ms, what) {
    const f = await this.next(ms, what);
    if (f.binary) throw new Error(`expected a text frame for ${what}, got binary ${JSON.stringify(f.data.toString('latin1'))}`);
    return f.text;
  }

  /** Sends a text frame and returns the text of the next frame. */
  async ask(frame, ms = 5000) {
    this.sendText(frame);
    return this.nextText(ms, `answer to ${JSON.stringify(frame.slice(0, 80))}`);
  }

  /** Resolves if no frame arrives within `ms`; throws with the frame otherwise. */
  async expectNothing(ms = 300, what = 'nothing') {
    try {
      const f = await this.next(ms, what);
      throw Object.assign(new Error(`expected ${what}, got ${f.binary ? 'binary' : 'text'} frame ${JSON.stringify(f.binary ? f.data.toString('latin1') : f.text).slice(0, 300)}`), { frame: f });
    } catch (e) {
      if (e.frame || !/timed out/.test(e.message)) throw e;
    }
  }

  /** Waits for the close; returns {code, reason}. */
  waitClose(ms = 5000) { return withTimeout(this.closed, ms, 'the server closing the connection'); }
  isOpen() { return this.ws.readyState === WebSocket.OPEN; }
  close() { if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000); }
  terminate() { this.ws.terminate(); }
}

/**
 * Sends one raw HTTP request over TCP and returns everything the server sent until it
 * closed the connection (or `ms` passed): {status, headers (lower-case names), body, raw}.
 */
export function rawHttp(port, request, ms = 3000) {
  return withTimeout(new Promise((resolve, reject) => {
    const chunks = [];
    const s = TLS ? tls.connect({ host: '127.0.0.1', port, ca: TLS.ca }, () => s.write(request))
      : net.connect({ host: '127.0.0.1', port }, () => s.write(request));
    const finish = () => {
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no complete HTTP head in ${JSON.stringify(raw)}`));
      const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
      const headers = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), statusLine, headers, body: raw.slice(end + 4), raw });
    };
    s.on('data', (d) => chunks.push(d));
    s.on('end', finish);
    s.on('error', (e) => (chunks.length ? finish() : reject(e)));
    s.setTimeout(ms - 200, () => { s.destroy(); finish(); });
  }), ms, `HTTP answer to ${JSON.stringify(request.split('\r\n')[0])}`);
}

/** A Uint8Array/ArrayBuffer/Buffer as a Buffer. */
export function bytes(x) {
  if (x instanceof ArrayBuffer) return Buffer.from(new Uint8Array(x));
  if (ArrayBuffer.isView(x)) return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return Buffer.from(x);
}

/** UUID v4 (docs/protocol.md §3.5: the default connection ID). */
export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15; 1/CLK_TCK steps). */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');   // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / TICKS;
}
