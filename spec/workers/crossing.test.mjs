// What crosses from one worker to another keeps what one loop gives (README "Workers": one server
// to clients and to the app). Each case puts two clients on two different workers and checks, by
// events and their order, what a client of one loop would see.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { T, ROOT, serveFor, RawClient, eventually, metricOf } from '../interop/lib/server.mjs';
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
/** a asks `event` about b, ROUNDS times; the receiver (pick(a, b)) gets "1" then "2" each time. */
async function inOrder(t, event, pick) {
  const s = await serveFor(t, APP, FLAGS);
  const [a, b] = await pair(t, s);
  for (let i = 0; i < ROUNDS; i++) {
    assert.equal(await askBody(a.ns, event, b.name), 'true');
    const got = (await pick(a, b).rec.count('seq', 2 * (i + 1))).slice(2 * i).map((m) => m.body);
    assert.deepEqual(got, ['1', '2'], `round ${i}`);
  }
}

test('a remote call made after a broadcast reaches its client after that broadcast', T,
  (t) => inOrder(t, 'then_remote', (a, b) => b));

test('what a remote call sent reaches the caller\'s worker before the call returns', T,
  (t) => inOrder(t, 'remote_then', (a) => a));

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

/**
 * Holds one worker (a handler that does not return until released), floods it with K broadcasts of
 * 64 KiB from a client on another worker, PER from each handler run, releases it, and returns how many
 * reached a client of the held worker (in order, the first ones) and how many drops /metrics counted.
 */
const PER = 4;
async function flood(t, flags, K) {
  const BODY = 'x'.repeat(64 * 1024);
  const s = await serveFor(t, APP, [...FLAGS, ...flags, '--lua-instruction-limit', '0', '--watchdog-warn-ms', '0']);
  const raws = [];
  let held, listener, sender;
  for (let i = 0; i < 12 && !(held && listener && sender); i++) {
    const r = await rawClient(t, s, `r${i}`);
    raws.push(r);
    if (!held) held = r;
    else if (!listener && r.worker === held.worker) listener = r;
    else if (!sender && r.worker !== held.worker) sender = r;
  }
  assert.ok(held && listener && sender, `clients on two workers: ${raws.map((r) => r.worker)}`);
  held.sendText('$5;w;;hold;0;0;');
  await eventually(async () => (await sender.ask('$6;w;;holding;0;0;')) === '$6;w;;holding;0;0;true', 'the worker holds');
  // One run at a time: its broadcasts are queued for the held worker (or dropped) before its answer.
  for (let k = 0; k < K; k += PER) assert.equal(await sender.ask(`$${100 + k};w;;burst;0;0;${PER}|${k}|${BODY}`), `$${100 + k};w;;burst;0;0;ok`);
  assert.equal(await sender.ask('$7;w;;release;0;0;', 10000), '$7;w;;release;0;0;true');
  assert.equal(await held.nextText(10000, 'held'), '$5;w;;hold;0;0;held');
  // The held worker's queue runs before the listener's next frame: what it got came before this answer.
  listener.sendText('$8;w;;worker;0;0;');
  let got = 0;
  for (;;) {
    const text = await listener.nextText(10000, 'a chat or the answer');
    if (text.startsWith('$8;')) break;
    assert.equal(text.slice(0, text.indexOf(' ')), `;w;;chat;0;0;${got}`, 'in order, the first ones');
    got++;
  }
  return { got, hits: await metricOf(s, 'neffos_limit_hits_total{limit="worker_queue"}'), logs: s.logs(), size: BODY.length };
}

// A worker's queue drops the calls over --max-worker-queue; the calls of one loop iteration go to it
// together, and a batch that did not fit counted one hit however many calls it held (of 64 broadcasts
// 8 went through and 14 drops were counted). Now every call dropped is a hit.
test('every call dropped at a full worker queue is counted', T, async (t) => {
  const K = 64, CAP = 8;
  const { got, hits } = await flood(t, ['--max-worker-queue', String(CAP)], K);
  assert.equal(got, CAP, 'as many as the queue holds went through');
  assert.equal(hits, K - got, 'every broadcast dropped is counted');
});

// A worker's queue was bounded in calls only (--max-worker-queue, a million): while a worker did
// not turn its loop, the broadcasts of the others piled up there with their bodies, up to a million
// messages of up to a MiB each. Now their bytes are bounded too (--max-worker-queue-bytes): past it a
// broadcast to that worker is dropped, counted (limit="worker_queue") and logged, as past the count.
test('the broadcasts waiting for a busy worker are bounded in bytes', T, async (t) => {
  const K = 64, CAP = 1 << 20;   // 4 MiB of broadcasts for a 1 MiB bound
  const { got, hits, logs, size } = await flood(t, ['--max-worker-queue-bytes', String(CAP)], K);
  // Each waits with its body and a few hundred bytes more, PER together: 3 runs' of 4 x 64 KiB fit in 1 MiB.
  assert.equal(got, PER * Math.floor(CAP / (PER * (size + 512))), `as many as the bytes hold went through (of ${K})`);
  assert.equal(hits, K - got, 'every broadcast dropped is counted');
  assert.match(logs, /the queue of worker \d is full \(--max-worker-queue \d+ calls, --max-worker-queue-bytes 1048576\)/);
});

/** Raw clients r0, r1 ... until there are three: `held` (r0), and `asker` and `releaser` on
 *  another worker (the asker's handler waits, so another connection releases the held worker). */
async function heldTrio(t, s) {
  const raws = [];
  let held, asker, releaser;
  for (let i = 0; i < 12 && !(held && asker && releaser); i++) {
    const r = await rawClient(t, s, `r${i}`);
    raws.push(r);
    if (!held) held = r;
    else if (r.worker === held.worker) continue;
    else if (!asker) asker = r;
    else if (!releaser) releaser = r;
  }
  assert.ok(held && asker && releaser, `clients on two workers: ${raws.map((r) => r.worker)}`);
  return { held, asker, releaser };
}

// A server ask by ID asks every worker, and the asker waited for all of them: with another worker
// busy (here held until released), `server:ask{ timeout = 0.3 }` came back only when that worker
// turned its loop again, seconds later, whether the ID was there, here or nowhere. Now the asker
// keeps its own timeout: what has not answered by then has timed out.
test('a server ask by ID keeps its timeout while another worker is busy', T, async (t) => {
  const s = await serveFor(t, APP, [...FLAGS, '--lua-instruction-limit', '0', '--watchdog-warn-ms', '0']);
  const { held, asker, releaser } = await heldTrio(t, s);
  held.sendText('$5;w;;hold;0;0;');
  await eventually(async () => (await asker.ask('$6;w;;holding;0;0;')) === '$6;w;;holding;0;0;true', 'the worker holds');
  try {
    // the held client itself, and an ID that is nowhere: both end at the ask's own timeout
    for (const [k, to] of [[0, 'r0'], [1, 'nobody']]) {
      assert.equal(await asker.ask(`$${10 + k};w;;ask_within;0;0;${to}|0.3`, 10000), `$${10 + k};w;;ask_within;0;0;failed: timeout`, to);
    }
  } finally {
    await releaser.ask('$7;w;;release;0;0;', 10000);
  }
  assert.equal(await held.nextText(10000, 'held'), '$5;w;;hold;0;0;held');
});

// A method of a remote object, and a listing, waited for the owning worker without a bound: with
// that worker busy (here held until released) the calling handler waited as long, holding its run
// and its connection's turn. Now each ends at the caller's deadline (the ask timeout, twice it for
// a call) in `nil, "timeout"`, the late answer is dropped, and the next call works.
test('a remote call and a listing end in "timeout" while the owning worker is busy', T, async (t) => {
  const s = await serveFor(t, APP, [...FLAGS, '--ask-timeout-ms', '300', '--lua-instruction-limit', '0', '--watchdog-warn-ms', '0']);
  const { held, asker, releaser } = await heldTrio(t, s);
  assert.equal(await asker.ask('$2;w;;keep;0;0;r0'), '$2;w;;keep;0;0;true', 'r0 is remote to the asker');
  assert.equal(await asker.ask('$3;w;;call_kept;0;0;'), '$3;w;;call_kept;0;0;false nil');
  held.sendText('$5;w;;hold;0;0;');
  await eventually(async () => (await asker.ask('$6;w;;holding;0;0;')) === '$6;w;;holding;0;0;true', 'the worker holds');
  try {
    assert.equal(await asker.ask('$10;w;;call_kept;0;0;', 10000), '$10;w;;call_kept;0;0;nil timeout', 'a remote call');
    assert.equal(await asker.ask('$11;w;;get_id;0;0;r0', 10000), '$11;w;;get_id;0;0;nil timeout', 'a listing');
  } finally {
    await releaser.ask('$7;w;;release;0;0;', 10000);
  }
  assert.equal(await held.nextText(10000, 'held'), '$5;w;;hold;0;0;held');
  // the late answers were dropped; the same calls answer again, and the held client is served
  assert.equal(await asker.ask('$12;w;;call_kept;0;0;', 10000), '$12;w;;call_kept;0;0;false nil');
  assert.equal(await asker.ask('$13;w;;get_id;0;0;r0', 10000), '$13;w;;get_id;0;0;r0 nil');
  assert.equal(await held.ask('$14;w;;worker;0;0;'), `$14;w;;worker;0;0;${held.worker}`);
});

// A remote call holds its arguments while it waits in the owning worker's queue, and since remote
// calls time out (above), a handler may make the next one while the last still waits there: they
// count against --max-worker-queue-bytes like broadcasts. 300 KiB writes to a held worker with a
// 1 MiB bound: the first three wait (and time out), the fourth is refused at once.
test('remote calls that wait for a busy worker count against its queue\'s bytes', T, async (t) => {
  const s = await serveFor(t, APP, [...FLAGS, '--ask-timeout-ms', '200', '--max-worker-queue-bytes', '1048576',
    '--lua-instruction-limit', '0', '--watchdog-warn-ms', '0']);
  const { held, asker, releaser } = await heldTrio(t, s);
  assert.equal(await asker.ask('$2;w;;keep;0;0;r0'), '$2;w;;keep;0;0;true', 'r0 is remote to the asker');
  held.sendText('$5;w;;hold;0;0;');
  await eventually(async () => (await asker.ask('$6;w;;holding;0;0;')) === '$6;w;;holding;0;0;true', 'the worker holds');
  let got;
  try {
    got = (await asker.ask(`$10;w;;write_kept;0;0;4|${300 * 1024}`, 10000)).split(';').pop().split('|');
  } finally {
    await releaser.ask('$7;w;;release;0;0;', 10000);
  }
  assert.deepEqual(got.slice(0, 3), ['timeout', 'timeout', 'timeout'], `${got}`);
  assert.match(got[3], /queue is full \(--max-worker-queue, --max-worker-queue-bytes\)/, `${got}`);
});
