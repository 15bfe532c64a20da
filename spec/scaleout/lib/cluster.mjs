// Scale-out harness: a real broker (redis-server or nats-server) on a free loopback port, that
// can be stopped and started again on the same port, and neffos processes sharing it (started
// with the interop harness). Every process started here is killed in `after`, also on failure.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';
import { ROOT, startServer, sleep, withTimeout, eventually, dial, rawHttp, neffos, freePort, canConnect } from '../../interop/lib/server.mjs';

export { sleep, withTimeout, eventually, neffos };

export const APP = path.join(ROOT, 'spec', 'scaleout', 'apps', 'cluster.lua');
export const ENDPOINT = '/cluster';

const BROKERS = {
  redis: {
    bin: process.env.REDIS_SERVER || 'redis-server',
    args: (port) => ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1'],
    flag: (port) => ['--redis', `redis://127.0.0.1:${port}`, '--redis-prefix', `t${process.pid}`],
  },
  nats: {
    bin: process.env.NATS_SERVER || '/usr/sbin/nats-server',
    args: (port) => ['-a', '127.0.0.1', '-p', String(port)],
    flag: (port) => ['--nats', `nats://127.0.0.1:${port}`, '--nats-prefix', `t${process.pid}`],
  },
};


/** A broker process that keeps its port across stop()/start(). */
export class Broker {
  constructor(kind) {
    this.kind = kind;
    this.spec = BROKERS[kind];
    this.proc = null;
    this.port = 0;
    this.log = '';
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const end = Date.now() + 10_000;
    // The port may linger for a moment after a stop: retry the spawn, bounded.
    while (Date.now() < end) {
      const proc = spawn(this.spec.bin, this.spec.args(this.port), { stdio: ['ignore', 'pipe', 'pipe'] });
      proc.stdout.setEncoding('utf8').on('data', (d) => { this.log = (this.log + d).slice(-20_000); });
      proc.stderr.setEncoding('utf8').on('data', (d) => { this.log = (this.log + d).slice(-20_000); });
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.once('error', () => {});
      this.proc = proc;
      this.exited = exited;
      const upBy = Date.now() + 3000;
      while (Date.now() < upBy && proc.exitCode === null && proc.signalCode === null) {
        if (await canConnect(this.port)) return this;
        await sleep(50);
      }
      await this.stop();
      await sleep(200);
    }
    throw new Error(`${this.kind} did not start on port ${this.port}\n${this.log}`);
  }

  async stop() {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');   // a crash, as far as the neffos processes can tell
      await withTimeout(this.exited, 5000, `${this.kind} exit`);
    }
  }

  /** The neffos flags that point at this broker. */
  flags() { return this.spec.flag(this.port); }
}

// In the sanitizer build ASan keeps up to 256 MB of freed memory in quarantine, which would
// make RSS measure allocation churn rather than what the process holds.
const SMALL_QUARANTINE = {
  ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=4', 'thread_local_quarantine_size_kb=256']
    .filter(Boolean).join(':'),
};

/** A broker and `n` neffos processes sharing it; everything is stopped in `after`. */
export function useCluster(kind, n) {
  const c = { broker: new Broker(kind), nodes: [] };
  c.ready = (async () => {
    await c.broker.start();
    for (let i = 0; i < n; i++)
      c.nodes.push(await startServer(APP, { endpoint: ENDPOINT, args: ['--no-watch', ...c.broker.flags()], env: SMALL_QUARANTINE }));
    // Each node logs its broker connection; wait for all before the tests dial.
    for (const node of c.nodes)
      await eventually(async () => (await metrics(node)).neffos_exchange_connected === 1, `${kind} connected`, 10_000);
  })();
  after(async () => {
    const errors = [];
    for (const node of c.nodes) await node.stop().catch((e) => errors.push(e));
    await c.broker.stop();
    if (errors.length) throw errors[0];
  });
  return c;
}

/** The server's /metrics as {name: number} (counters and gauges without labels). */
export async function metrics(node) {
  // One connection per request (fetch's keep-alive pool may reuse a socket the server closed).
  // No retry: a request must be answered even while the broker reconnects. (An early version of the
  // write path tore down connections on a stale errno left by a failed broker connect.)
  const get = () => rawHttp(node.port, 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
  const res = await get().catch((e) => { throw new Error(`${e.message}\n${node.describe()}`); });
  const out = {};
  for (const line of res.body.split('\n')) {
    const m = /^([a-z_]+) ([0-9.e+-]+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Resident set size of a process, bytes (Linux). */
export function rss(node) {
  const status = readFileSync(`/proc/${node.proc.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

/**
 * A neffos.js client named `name` (its connection ID, through the X-Username header) on
 * `node`, connected to namespace "default". Records every event it receives in `.got` as
 * "event room body" strings; answers the "question" ask with "<name> says hi".
 */
export async function client(t, node, name) {
  const got = [];
  const waiters = [];
  const record = (ev) => (nsc, msg) => {
    got.push(`${ev} ${msg.Room || '-'} ${msg.Body}`);
    for (const w of waiters.splice(0)) w();
  };
  const conn = await dial(t, node.url(), {
    default: {
      news: record('news'),
      chat: record('chat'),
      direct: record('direct'),
      question: () => neffos.reply(`${name} says hi`),
    },
  }, { headers: { 'X-Username': name } });
  const ns = await withTimeout(conn.connect('default'), 5000, `${name} connect default`);
  return {
    name, conn, ns, got,
    /** Waits until `line` was received (bounded). */
    async saw(line, ms = 5000) {
      await eventually(() => got.includes(line), `${name} receives ${JSON.stringify(line)}; got ${JSON.stringify(got.slice(-10))}`, ms, 20);
    },
    has(line) { return got.includes(line); },
  };
}
