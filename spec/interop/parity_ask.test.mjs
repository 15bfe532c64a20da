// Issue 3, server asks (docs/protocol.md §8.2, §8.4, §17.4; docs/lua-api.md): server:ask by ID from a handler
// and from a timer, ns:ask back to the handler's own client without deadlock, answers with
// neffos.reply and with errors, unanswered asks timing out after their timeout, the asked
// connection closing meanwhile, unknown IDs. (ask.test.mjs covers the single ask-back basics.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, RawClient, withTimeout, neffos } from './lib/server.mjs';
import { connectAs, askBody } from './lib/parity.mjs';

const h = useServer(appPath('parity_ask.lua'));

// The client's answer to the server's "question": neffos.reply(x), an Error, or nothing.
function answerer(tag) {
  return {
    question: (ns, msg) => {
      if (msg.Body.startsWith('err')) return new Error(`${tag} refuses ${msg.Body}`);
      if (msg.Body.startsWith('mute')) return null;
      return neffos.reply(`${tag}:${msg.Body}`);
    },
  };
}
const q = (t, name, opts = {}) => connectAs(t, h.server.url(), name, { ns: 'q', events: ['later'], own: answerer(name), ...opts });

test('server:ask{to=id} from a handler: the other client answers with neffos.reply or an Error', T, async (t) => {
  const [a, b, c] = await Promise.all([q(t, 'si-a'), q(t, 'si-b'), q(t, 'si-c')]);
  assert.equal(await askBody(a.ns, 'ask_id', 'si-b|2|hello'), 'answer: si-b:hello');
  assert.equal(await askBody(a.ns, 'ask_id', 'si-c|2|hi;there'), 'answer: si-c:hi;there');
  assert.equal(await askBody(b.ns, 'ask_id', 'si-a|2|back'), 'answer: si-a:back');
  assert.equal(await askBody(a.ns, 'ask_id', 'si-b|2|err1'), 'ask failed: si-b refuses err1');
  assert.equal(await askBody(a.ns, 'ask_id', 'si-a|2|self'), 'answer: si-a:self', 'asking itself by ID works too');
  assert.deepEqual(b.rec.bodies('question'), ['hello', 'err1']);
  assert.deepEqual(c.rec.bodies('question'), ['hi;there']);
  assert.ok(b.rec.of('question').every((s) => /^\d+$/.test(s.wait)), 'digits tokens (17.4.1)');
});

test('an unanswered server ask fails with "timeout" after its timeout, and not before', T, async (t) => {
  const [a] = await Promise.all([q(t, 'to-a'), q(t, 'to-b')]);
  for (const [target, timeout] of [['to-b', 0.5], ['to-a', 1]]) {
    const t0 = Date.now();
    assert.equal(await askBody(a.ns, 'ask_id', `${target}|${timeout}|mute`), 'ask failed: timeout');
    const took = Date.now() - t0;
    assert.ok(took >= timeout * 1000 - 50, `${target}: answered after ${took} ms, timeout ${timeout} s`);
    assert.ok(took < timeout * 1000 + 1500, `${target}: took ${took} ms for a ${timeout} s timeout`);
  }
  // ns:ask back to the own client, unanswered: the same
  const t0 = Date.now();
  assert.equal(await askBody(a.ns, 'askback', '0.5|mute'), 'ask failed: timeout');
  assert.ok(Date.now() - t0 >= 450);
  // the connection is fine afterwards
  assert.equal(await askBody(a.ns, 'echo', 'still'), 'echo: still');
});

test('the asked connection closes meanwhile: "write closed" at once, not the timeout; an unknown ID: "not found"', T, async (t) => {
  const [a, b] = await Promise.all([q(t, 'cl-a'), q(t, 'cl-b')]);
  const t0 = Date.now();
  const pending = askBody(a.ns, 'ask_id', 'cl-b|10|mute');
  await b.rec.count('question', 1);
  b.conn.close();
  assert.equal(await pending, 'ask failed: write closed');
  assert.ok(Date.now() - t0 < 5000, 'long before the 10 s timeout');
  assert.equal(await askBody(a.ns, 'ask_id', 'nobody|1|x'), 'ask failed: not found');
});

test('server:ask from a timer (neffos.after): answered, refused, timed out', T, async (t) => {
  const [a] = await Promise.all([q(t, 'tm-a'), q(t, 'tm-b')]);
  assert.equal(await askBody(a.ns, 'ask_id_later', 'tm-b|2|from timer'), 'scheduled');
  assert.equal(await askBody(a.ns, 'ask_id_later', 'tm-b|2|err2'), 'scheduled');
  assert.equal(await askBody(a.ns, 'ask_id_later', 'tm-b|0.3|mute'), 'scheduled');
  await a.rec.count('later', 3);
  assert.deepEqual(a.rec.bodies('later').sort(), ['answer: tm-b:from timer', 'ask failed: timeout', 'ask failed: tm-b refuses err2'].sort());
});

test('ask-back: ns:ask inside a handler twice, while the same client keeps sending; no deadlock, order kept', T, async (t) => {
  const [a, b] = await Promise.all([q(t, 'ab-a'), q(t, 'ab-b')]);
  const first = withTimeout(a.ns.ask('askback_twice', 'x'), 5000, 'askback_twice');
  const second = withTimeout(a.ns.ask('echo', 'after'), 5000, 'echo after');   // waits behind the first
  const other = withTimeout(b.ns.ask('askback_twice', 'y'), 5000, 'b askback_twice');
  assert.equal((await first).Body, 'ab-a:x-1+ab-a:x-2');
  assert.equal((await second).Body, 'echo: after');
  assert.equal((await other).Body, 'ab-b:y-1+ab-b:y-2');
  assert.deepEqual(a.rec.bodies('question'), ['x-1', 'x-2']);
  // ten clients asking back at once
  const many = await Promise.all(Array.from({ length: 10 }, (_, i) => q(t, `ab-m${i}`)));
  const answers = await Promise.all(many.map((c, i) => askBody(c.ns, 'askback', `2|m${i}`)));
  answers.forEach((x, i) => assert.equal(x, `answer: ab-m${i}:m${i}`));
});

test('an answer arriving after the timeout is dropped, not dispatched (17.4.3)', T, async (t) => {
  // A client whose answer comes late: neffos.js answers synchronously, so use a raw frame.
  const a = await q(t, 'late-a');
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'late-raw' } });
  assert.equal(await r.ask('$1;q;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  const pending = askBody(a.ns, 'ask_id', 'late-raw|0.3|slow');
  const req = await r.nextText(5000, 'the question');
  const m = /^(\d+);q;;question;0;0;slow$/.exec(req);
  assert.ok(m, req);
  assert.equal(await pending, 'ask failed: timeout');
  r.sendText(`${m[1]};q;;question;0;0;too late`);
  await r.expectNothing(300, 'no reaction to a late answer');
  assert.equal(await r.ask('$2;q;;echo;0;0;ok'), '$2;q;;echo;0;0;echo: ok');
});

test('an ask answered with a binary frame reaches the handler as binary (msg.binary)', T, async (t) => {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'bin-raw' } });
  assert.equal(await r.ask('$1;q;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  for (const binary of [true, false]) {
    r.sendText(`$k${binary};q;;askback_kind;0;0;how`);
    const req = await r.nextText(5000, 'the question');
    const m = /^(\d+);q;;question;0;0;how$/.exec(req);
    assert.ok(m, req);
    const answer = Buffer.from(`${m[1]};q;;question;0;0;\x01yes`, 'latin1');
    if (binary) r.sendBinary(answer); else r.sendText(answer.toString('latin1'));
    assert.equal(await r.nextText(5000, 'the handler result'),
      `$k${binary};q;;askback_kind;0;0;${binary ? 'binary' : 'text'}:\x01yes`);
  }
});
