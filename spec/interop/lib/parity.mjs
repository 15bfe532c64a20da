// Helpers for the parity_*.test.mjs files (issue 3): a recorder of what a neffos.js
// client's handlers see, and a one-call "dial + connect" for a named client.
import { dial, withTimeout, eventually, bytes } from './server.mjs';

export const SYSTEM_EVENTS = ['_OnNamespaceConnect', '_OnNamespaceConnected', '_OnNamespaceDisconnect',
  '_OnRoomJoin', '_OnRoomJoined', '_OnRoomLeave', '_OnRoomLeft'];

/** Records every event the handlers built by `handlers()` receive. */
export class Recorder {
  constructor() { this.seen = []; }

  /** A namespace handler table recording `events` (plus the system events); extra
   *  handlers in `own` run after recording and their return value is returned. */
  handlers(events = [], own = {}) {
    const table = {};
    for (const ev of new Set([...SYSTEM_EVENTS, ...events, ...Object.keys(own)])) {
      table[ev] = (nsConn, msg) => {
        this.seen.push({
          event: ev, ns: msg.Namespace, room: msg.Room ?? '',
          body: msg.Body instanceof ArrayBuffer ? bytes(msg.Body).toString('latin1') : msg.Body,
          binary: msg.Body instanceof ArrayBuffer, local: msg.IsLocal, forced: msg.IsForced, wait: msg.wait,
        });
        return own[ev] ? own[ev](nsConn, msg) : undefined;
      };
    }
    return table;
  }

  of(event) { return this.seen.filter((s) => s.event === event); }
  bodies(event) { return this.of(event).map((s) => s.body); }
  /** Short "event room" strings of the system events, in order. */
  system() { return this.seen.filter((s) => SYSTEM_EVENTS.includes(s.event)).map((s) => `${s.event} ${s.room}`.trim()); }

  /** Waits (bounded) until `n` events named `event` arrived; returns them. */
  async count(event, n, ms = 5000) {
    await eventually(() => this.of(event).length >= n, `${n} x ${event} (have ${this.of(event).length})`, ms, 10);
    return this.of(event);
  }
}

/** Dials with the user name `name` (the apps use X-Username as the ID), connects `ns`,
 *  records into a new Recorder. Returns {conn, ns, rec, id}. */
export async function connectAs(t, url, name, { ns = 'default', events = [], own = {}, options = {}, extraNs = {}, keepConnectEvents = false } = {}) {
  const rec = new Recorder();
  const conn = await dial(t, url, { [ns]: rec.handlers(events, own), ...extraNs },
    { ...options, headers: { 'X-Username': name, ...(options.headers || {}) } });
  const nsConn = await withTimeout(conn.connect(ns), 5000, `${name} connect ${ns}`);
  if (!keepConnectEvents) rec.seen.length = 0;   // start with a clean record after connect()
  return { conn, ns: nsConn, rec, id: conn.ID };
}

/** ask() bounded; resolves with the body. */
export async function askBody(nsConn, event, body = '', ms = 5000) {
  return (await withTimeout(nsConn.ask(event, body), ms, `ask ${event}(${String(body).slice(0, 40)})`)).Body;
}

/** ask() bounded; resolves with the error message (or fails if the ask succeeded). */
export async function askError(nsConn, event, body = '', ms = 5000) {
  const r = await withTimeout(nsConn.ask(event, body).then((m) => ({ ok: m }), (e) => ({ err: e })), ms, `ask ${event}`);
  if (r.ok) throw new Error(`ask ${event} succeeded with ${JSON.stringify(r.ok.Body)}, expected an error`);
  return r.err instanceof Error ? r.err.message : String(r.err);
}

/** The worker (1..N, `neffos.worker.id`) serving a connection: with --workers N (NEFFOS_WORKERS)
 *  what a broadcast returns counts that worker's receivers only. Asks the app's event `event`,
 *  which answers neffos.worker.id. */
export async function workerOf(nsConn, event = 'worker') {
  return Number(await askBody(nsConn, event));
}

/** Connects with `connect()` (resolving to {ns, ...}) until a connection lands on worker `w`
 *  (the listener hands each new one to the least loaded worker, so a few tries reach every
 *  worker); the others stay open until the test ends. Bounded: fails after `tries`. */
export async function connectOnWorker(connect, w, tries = 8, event = 'worker') {
  const seen = [];
  for (let i = 0; i < tries; i++) {
    const c = await connect(i);
    const got = await workerOf(c.ns, event);
    if (got === w) return c;
    seen.push(got);
  }
  throw new Error(`no connection landed on worker ${w} in ${tries} tries (got ${seen})`);
}
