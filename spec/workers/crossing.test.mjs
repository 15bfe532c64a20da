// What crosses from one worker to another keeps what one loop gives (README "Workers": one server
// to clients and to the app). Each case puts two clients on two different workers and checks, by
// events and their order, what a client of one loop would see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { T, ROOT, serveFor, RawClient } from '../interop/lib/server.mjs';
import { connectAs, askBody } from '../interop/lib/parity.mjs';

const APP = path.join(ROOT, 'spec', 'workers', 'apps', 'crossing.lua');
const FLAGS = ['--workers', String(Math.max(2, Number(process.env.NEFFOS_WORKERS || 2)))];
const ROUNDS = 10;

async function client(t, s, name, own = {}) {
  const c = await connectAs(t, s.url(), name, { ns: 'w', events: ['seq'], own });
  c.name = name;
  c.worker = Number(await askBody(c.ns, 'worker'));
  return c;
}

/** Two clients on two different workers (bounded tries). */
async function pair(t, s, own = {}) {
  const x = await client(t, s, 'ann', own);
  for (let i = 0; i < 8; i++) {
    const y = await client(t, s, `bob${i}`, own);
    if (y.worker !== x.worker) return [x, y];
  }
  throw new Error('no client landed on another worker');
}

// A remote call is posted to its worker at once, a broadcast with the rest of the loop
// iteration's calls at its end: a remote emit made after a broadcast overtook it (the client got
// "2" then "1" every time), and the answer of a remote call overtook what the method had sent to
// the caller's worker. Now what a worker sent before goes first (workers.h, nf_workers_post).
test('a remote call made after a broadcast reaches its client after that broadcast', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  const [a, b] = await pair(t, s);
  for (let i = 0; i < ROUNDS; i++) {
    assert.equal(await askBody(a.ns, 'then_remote', b.name), 'true');
    const got = (await b.rec.count('seq', 2 * (i + 1))).slice(2 * i).map((m) => m.body);
    assert.deepEqual(got, ['1', '2'], `round ${i}`);
  }
});

test('what a remote call sent reaches the caller\'s worker before the call returns', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  const [a, b] = await pair(t, s);
  for (let i = 0; i < ROUNDS; i++) {
    assert.equal(await askBody(a.ns, 'remote_then', b.name), 'true');
    const got = (await a.rec.count('seq', 2 * (i + 1))).slice(2 * i).map((m) => m.body);
    assert.deepEqual(got, ['1', '2'], `round ${i}`);
  }
});

/** A raw client named `name` in namespace w, with the worker serving it. */
async function rawClient(t, s, name) {
  const c = await RawClient.connect(t, s.url(), { headers: { 'X-Username': name } });
  assert.equal(await c.ask('$0;w;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  c.worker = Number((await c.ask('$1;w;;worker;0;0;')).split(';').pop());
  return c;
}

// The question of a server ask by ID went to the other workers without its frame type: a client
// there got `server:ask{ binary = true }` as a text frame (with a binary codec, bytes that are not
// UTF-8 in a text frame, which a browser fails with 1007), and the answer's msg.binary was lost
// on the way back. Now a worker's client gets what a client of the asker's worker gets.
test('a binary server ask by ID is a binary frame on every worker, and so is its answer', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  const a = await client(t, s, 'ann');
  const targets = [];
  for (let i = 0; i < 8 && targets.length < 2; i++) {
    const r = await rawClient(t, s, `raw${i}`);
    r.name = `raw${i}`;
    if (!targets.some((x) => (x.worker === a.worker) === (r.worker === a.worker))) targets.push(r);
  }
  assert.equal(targets.length, 2, 'a target on the asker\'s worker and one on another');
  for (const r of targets) {
    const where = r.worker === a.worker ? 'same worker' : 'other worker';
    const answer = a.ns.ask('ask_binary', `${r.name}|q-${r.name}`);
    const f = await r.next(5000, `the question (${where})`);
    const data = f.data.toString('latin1');
    assert.deepEqual({ binary: f.binary, rest: data.slice(data.indexOf(';')) }, { binary: true, rest: `;w;;question;0;0;q-${r.name}` }, where);
    r.sendBinary(Buffer.from(`${data.slice(0, data.indexOf(';'))};w;;question;0;0;a-${r.name}`, 'latin1'));
    assert.equal((await answer).Body, `a-${r.name}|true`, where);
  }
});
