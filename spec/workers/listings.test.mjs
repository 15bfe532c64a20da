// Issue 15 point 2: with --workers N, server:connections(), get(id), get_all(id) and
// members(ns [, room]) list every worker's connections, in opening order, and a connection of
// another worker is a remote object: its fields answer at once, its methods run on the worker
// that serves it (emit, ask and forced joins included) and their results, or the error they
// raise, come back (docs/lua-api.md, "Workers").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { T, ROOT, serveFor, withTimeout, eventually, neffos } from '../interop/lib/server.mjs';
import { connectAs, askBody } from '../interop/lib/parity.mjs';

const APP = path.join(ROOT, 'spec', 'workers', 'apps', 'listings.lua');
const WORKERS = Math.max(2, Number(process.env.NEFFOS_WORKERS || 2));
const FLAGS = ['--workers', String(WORKERS)];

/** `names` connected in order, each with the worker serving it and a tab header. */
async function clients(t, s, names) {
  const out = [];
  for (const name of names) {
    const c = await connectAs(t, s.url(), name, {
      ns: 'w', events: ['hello', 'all'],
      own: { question: (ns, msg) => neffos.reply(`${name} says ${msg.Body}`) },
      options: { headers: { 'X-Tab': `tab-${name}` } },
    });
    c.name = name;
    c.worker = Number(await askBody(c.ns, 'worker'));
    out.push(c);
  }
  return out;
}

/** [a client, one on another worker]. */
function apart(cs) {
  const b = cs.find((c) => c.worker !== cs[0].worker);
  assert.ok(b, `clients on one worker only: ${cs.map((c) => c.worker)}`);
  return [cs[0], b];
}

const listing = (cs) => cs.map((c) => `${c.name}@${c.worker}`).join(',');

test('the listings cover every worker, in opening order, from any worker', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  const cs = await clients(t, s, ['ann', 'bob', 'cat', 'dan']);
  assert.ok(new Set(cs.map((c) => c.worker)).size > 1, 'clients on several workers');
  for (const c of cs) {
    assert.equal(await askBody(c.ns, 'connections'), `${c.worker}:${listing(cs)}`, `connections from ${c.name}`);
    assert.equal(await askBody(c.ns, 'members', 'w'), `${c.worker}:${listing(cs)}`, `members from ${c.name}`);
  }
  // an ID shared by two connections on two workers: get_all both, oldest first; get the newest
  const [a, b] = apart(cs);
  const twins = await clients(t, s, ['twin', 'twin']);
  assert.ok(twins[0].worker !== twins[1].worker, 'the two twins on two workers');
  assert.equal(await askBody(a.ns, 'get_all', 'twin'), `${a.worker}:${listing(twins)}`);
  assert.match(await askBody(a.ns, 'get', 'twin'), new RegExp(`^${a.worker}:twin remote=${twins[1].worker !== a.worker} tab=tab-twin ns=w closed=false`));
  assert.equal(await askBody(b.ns, 'get', 'nobody'), `${b.worker}:nil`);
  // a room with members on both workers
  await withTimeout(b.ns.joinRoom('r'), 5000, 'b joins r');
  await withTimeout(a.ns.joinRoom('r'), 5000, 'a joins r');
  const inRoom = [a, b].sort((x, y) => cs.indexOf(x) - cs.indexOf(y));
  assert.equal(await askBody(a.ns, 'members', 'w|r'), `${a.worker}:${listing(inRoom)}`);
  assert.equal(await askBody(b.ns, 'members', 'w|r'), `${b.worker}:${listing(inRoom)}`);
});

test('a remote object: fields, emit, ask and a forced join run on its worker', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  const [a, b] = apart(await clients(t, s, ['ann', 'bob', 'cat']));
  const got = await askBody(a.ns, 'get', b.name);
  assert.equal(got, `${a.worker}:${b.name} remote=true tab=tab-${b.name} ns=w closed=false tostring=conn(${b.name}, worker ${b.worker})`);
  // emit: the client on the other worker gets it
  assert.equal(await askBody(a.ns, 'emit_to', `${b.name}|hello|from ${a.name}`), `${a.worker}:true`);
  assert.deepEqual((await b.rec.count('hello', 1)).map((m) => m.body), [`from ${a.name}`]);
  // ask: the handler on a's worker waits for b's client's answer
  assert.equal(await askBody(a.ns, 'ask_to', `${b.name}|hi`), `${a.worker}:${b.name} says hi room=`);
  // a forced join: b's client sees it; the room object and its ns come back remote
  assert.equal(await askBody(a.ns, 'join', `${b.name}|lobby`), `${a.worker}:joined lobby (${b.name}) rooms=lobby`);
  await eventually(() => b.rec.system().includes('_OnRoomJoined lobby'), 'b saw the forced join');
  assert.equal(await askBody(a.ns, 'members', 'w|lobby'), `${a.worker}:${b.name}@${b.worker}`);
  assert.equal(await askBody(a.ns, 'leave', `${b.name}|lobby`), `${a.worker}:left=true`);
  assert.equal(await askBody(a.ns, 'members', 'w|lobby'), `${a.worker}:`);
  // values are copied both ways, tables included; equality names the connection
  assert.equal(await askBody(a.ns, 'store', `${b.name}|k`), `${a.worker}:4 integer 2.5 three true x`);
  assert.equal(await askBody(a.ns, 'same', b.name), `${a.worker}:true false`);
  assert.equal(await askBody(a.ns, 'same', a.name), `${a.worker}:true true`);
});

test('errors: raised there, raised here; what cannot be copied is refused; a closed one answers closed', T, async (t) => {
  const s = await serveFor(t, APP, FLAGS);
  const cs = await clients(t, s, ['ann', 'bob', 'cat']);
  const [a, b] = apart(cs);
  assert.match(await askBody(a.ns, 'bad_code', b.name), new RegExp(`^${a.worker}:false .*code`));
  assert.match(await askBody(a.ns, 'bad_arg', b.name), new RegExp(`^${a.worker}:false .*only nil, booleans`));
  // except = another worker's ns: everybody but that connection
  assert.equal(await askBody(a.ns, 'except_remote', `${b.name}|not you`), `${a.worker}:sent`);
  for (const c of cs.filter((x) => x !== b)) await c.rec.count('all', 1);
  // kick the other worker's client with a code; the kept object then answers as closed
  const closed = new Promise((resolve) => { b.conn.conn.onclose = (e) => resolve(e); });
  assert.equal(await askBody(a.ns, 'kick', `${b.name}|4001|bye`), `${a.worker}:kicked`);
  const ev = await withTimeout(closed, 5000, 'b closed');
  assert.equal(ev.code, 4001);
  assert.equal(await askBody(a.ns, 'kept'), `${a.worker}:closed=true ns=nil write closed`);
  assert.equal(b.rec.bodies('all').length, 0, 'the except skipped b');
});
