// Connection IDs as the app gives them (docs/protocol.md §3.5, 17.2.5 revised; issue 12 points 1-2), with the
// real neffos.js: any ID is used as it is and comes back in conn.ID; an ID that cannot work
// (empty, longer than --max-id-bytes, not UTF-8, a failing id()) refuses the dial with a clear
// "H" text instead of being replaced; IDs need not be unique, and "to", "except" and
// server:ask reach every connection with the ID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, rawHttp, neffos, withTimeout, eventually } from './lib/server.mjs';
import { workerOf } from './lib/parity.mjs';

const MAX_ID = 40;
const h = useServer(appPath('ids.lua'), { args: ['--max-id-bytes', String(MAX_ID)] });

// The app percent-decodes X-Id, so any bytes can travel in a header.
const idHeader = (id) => encodeURIComponent(id);
let seq = 0;
const uniq = (s) => `${s} #${++seq}`;

/** A neffos.js client with ID `id`, connected to "default"; records "news" bodies. */
async function client(t, id, { tab = '', onQuestion } = {}) {
  const got = [];
  const headers = { 'X-Id': idHeader(id) };
  if (tab) headers['X-Tab'] = tab;
  const conn = await dial(t, h.server.url(), {
    default: {
      news: (ns, msg) => { got.push(msg.Body); },
      question: (ns, msg) => (onQuestion ? onQuestion(ns, msg) : undefined),
    },
  }, { headers });
  const ns = await withTimeout(conn.connect('default'), 5000, `${id} connects`);
  return { id, conn, ns, got, tab };
}

const ask = async (c, event, body) => (await withTimeout(c.ns.ask(event, typeof body === 'string' ? body : JSON.stringify(body)), 10_000, event)).Body;

async function metric(name) {
  const res = await rawHttp(h.server.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const line = res.body.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.slice(name.length + 1)) : NaN;
}

test('any ID the app returns is used as it is: conn.ID and ns.id are exactly it (17.2.5)', T, async (t) => {
  for (const id of ['alice@example.com', 'bob smith', 'zoë 🎉 ünïcödé', 'a.b.c', 'semi;colon;', 'star*gt>?[q]',
    '  spaces around  ', 'tab\there', 'line\nbreak', '%41 percent', 'neffos(0xC1:abc']) {
    const c = await client(t, id);
    assert.equal(c.conn.ID, id, `conn.ID of ${JSON.stringify(id)}`);
    assert.equal(await ask(c, 'whoami', ''), id, `ns.id of ${JSON.stringify(id)}`);
    c.conn.close();
  }
  // Exactly the limit is fine.
  const long = 'x'.repeat(MAX_ID - 2) + 'é';
  const c = await client(t, long);
  assert.equal(c.conn.ID, long);
});

test('the raw "A" frame carries the ID byte for byte, ";" included (4.1)', T, async (t) => {
  const raw = await RawClient.open(t, h.server.url(), { headers: { 'X-Id': idHeader('x;y;z;;') } });
  assert.equal(await raw.handshake(), 'Ax;y;z;;');
});

test('an ID that cannot work refuses the dial with a clear H text, never a substitute', T, async (t) => {
  const refusals = await metric('neffos_refusals_total{reason="id"}');
  const cases = [
    [{ 'X-Id': '' }, 'empty connection ID'],
    [{ 'X-Id': 'y'.repeat(MAX_ID + 1) }, 'connection ID too long'],
    [{ 'X-Id': 'x'.repeat(MAX_ID - 1) + '%C3%A9' }, 'connection ID too long'],   // 41 bytes, 40 characters
    [{ 'X-Id': 'bad%FFutf8' }, 'connection ID is not valid UTF-8'],
    [{ 'X-Id': 'z', 'X-Id-Fail': '1' }, 'cannot assign a connection ID'],
  ];
  for (const [headers, text] of cases) {
    await assert.rejects(dial(t, h.server.url(), { default: {} }, { headers }), (err) => {
      assert.equal(err.message, text, `dial() with ${JSON.stringify(headers).slice(0, 80)}`);
      return true;
    });
    const raw = await RawClient.open(t, h.server.url(), { headers });
    assert.equal(await raw.handshake(), 'H' + text);
    await raw.waitClose(5000);
  }
  assert.equal(await metric('neffos_refusals_total{reason="id"}'), refusals + 2 * cases.length);
  assert.match(h.server.logs(), /refused: connection ID too long/);
});

test('an ID with a newline cannot forge a log line', T, async (t) => {
  const id = 'evil\nerror forged';
  await assert.rejects(dial(t, h.server.url(), { default: {} }, { headers: { 'X-Id': idHeader(id), 'X-Refuse': 'no' } }),
    (err) => err.message === 'refused: no');
  await eventually(() => h.server.logs().includes('conn evil\\x0aerror forged'), 'the escaped ID in the log');
  assert.ok(!/^error forged/m.test(h.server.logs()), 'a forged log line');
});

test('IDs need not be unique: two dials with one ID are both accepted (17.2.5)', T, async (t) => {
  const id = uniq('alice@example.com');
  const a = await client(t, id, { tab: '1' });
  const b = await client(t, id, { tab: '2' });
  assert.equal(a.conn.ID, id);
  assert.equal(b.conn.ID, id);
  assert.equal(await ask(a, 'whoami', ''), id);
  assert.equal(await ask(b, 'whoami', ''), id);
  // server:get is the newest, get_all every one oldest first; members once per connection.
  assert.equal(await ask(a, 'get', id), '2');
  assert.equal(await ask(a, 'get_all', id), '1,2');
  assert.equal(JSON.parse(await ask(a, 'members', '')).filter((m) => m === id).length, 2);
  b.conn.close();
  await eventually(async () => (await ask(a, 'get_all', id)) === '1', 'the closed one leaves get_all');
  assert.equal(await ask(a, 'get', id), '1');
});

test('an app that wants unique IDs refuses the second connection itself (docs/lua-api.md)', T, async (t) => {
  const id = uniq('single');
  await dial(t, h.server.url(), { default: {} }, { headers: { 'X-Id': idHeader(id), 'X-Single': '1' } });
  await assert.rejects(dial(t, h.server.url(), { default: {} }, { headers: { 'X-Id': idHeader(id), 'X-Single': '1' } }),
    (err) => err.message === 'already connected');
  // The refused one's on_disconnect ran too, and must not have given the first one's key back.
  await assert.rejects(dial(t, h.server.url(), { default: {} }, { headers: { 'X-Id': idHeader(id), 'X-Single': '1' } }),
    (err) => err.message === 'already connected', 'a third is refused as well');
});

test('broadcast to = ID reaches every connection with it, nobody else (10.1)', T, async (t) => {
  const id = uniq('bob smith');
  const a = await client(t, id, { tab: '1' });
  const b = await client(t, id, { tab: '2' });
  const other = await client(t, uniq('other'));
  const body = uniq('for bob');
  // the receivers on the sender's worker (both with one worker; docs/lua-api.md "Workers")
  const w = await workerOf(other.ns);
  const local = (await Promise.all([a, b].map((x) => workerOf(x.ns)))).filter((x) => x === w).length;
  assert.equal(await ask(other, 'to', { to: id, body }), String(local), 'the local receivers');
  await eventually(() => a.got.includes(body) && b.got.includes(body), 'both get it');
  // A frame for `other` would have been sent before the answer to its own request.
  assert.ok(!other.got.includes(body), 'a connection with another ID got it');
});

test('except = ID excludes every connection with it', T, async (t) => {
  const id = uniq('zoë.dup');
  const a = await client(t, id);
  const b = await client(t, id);
  const other = await client(t, uniq('other'));
  const body = uniq('not for zoë');
  await ask(other, 'except', { except: id, body });
  await eventually(() => other.got.includes(body), 'the others get it');
  // A round trip on each: the broadcast, sent before, would have arrived before the answer.
  await ask(a, 'whoami', '');
  await ask(b, 'whoami', '');
  assert.ok(!a.got.includes(body) && !b.got.includes(body), 'a connection with the excluded ID got it');
});

test('server:ask { to = ID } asks every connection with it; the first answer wins, later ones are dropped (8.4)', T, async (t) => {
  const asked = [];
  const held = [];   // answers kept back until the test releases them
  // "now": answer at once; "held": answer by hand, with the same token, when released.
  const behave = (name, mode) => (ns, msg) => {
    asked.push(name);
    if (mode === 'now') return neffos.reply(`${name} answers`);
    if (mode === 'held') held.push(() => { msg.Body = `${name} answers late`; ns.conn.write(msg); });
    return undefined;
  };
  const other = await client(t, uniq('asker'));
  const questions = async () => JSON.parse(await ask(other, 'stats', '')).question;

  // The older connection answers at once, the newer one after the ask completed.
  const id = uniq('carol');
  const a = await client(t, id, { onQuestion: behave('A', 'now') });
  const b = await client(t, id, { onQuestion: behave('B', 'held') });
  assert.equal(await ask(other, 'ask', { to: id, body: 'q' }), 'A answers');
  await eventually(() => held.length === 1, 'B was asked too');
  for (const release of held.splice(0)) release();
  await ask(b, 'whoami', '');   // B's late answer went before this request: handled by now
  assert.equal(await questions(), 0, 'a late answer was dispatched as an event');

  // The other way round: the first to answer wins, whichever connected first.
  asked.length = 0;
  const id2 = uniq('carol');
  const c = await client(t, id2, { onQuestion: behave('C', 'held') });
  await client(t, id2, { onQuestion: behave('D', 'now') });
  assert.equal(await ask(other, 'ask', { to: id2, body: 'q' }), 'D answers');
  await eventually(() => held.length === 1, 'C was asked too');
  for (const release of held.splice(0)) release();
  await ask(c, 'whoami', '');
  assert.equal(await questions(), 0);

  // One silent (a neffos.js handler returning nothing never answers), one answering.
  const id3 = uniq('dave');
  await client(t, id3, { onQuestion: behave('E', 'silent') });
  await client(t, id3, { onQuestion: behave('F', 'now') });
  assert.equal(await ask(other, 'ask', { to: id3, body: 'q', timeout: 2 }), 'F answers');
  // All silent: the timeout, once.
  const id4 = uniq('erin');
  await client(t, id4, { onQuestion: behave('G', 'silent') });
  await client(t, id4, { onQuestion: behave('H', 'silent') });
  await assert.rejects(other.ns.ask('ask', JSON.stringify({ to: id4, body: 'q', timeout: 0.3 })),
    (e) => e.message === 'ask failed: timeout');
  // Nobody with that ID: "not found" at once (no scale-out).
  await assert.rejects(other.ns.ask('ask', JSON.stringify({ to: uniq('nobody'), body: 'q' })),
    (e) => e.message === 'ask failed: not found');
  assert.equal(await questions(), 0);
  a.conn.close();
});
