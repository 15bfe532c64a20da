// examples/auth, started by its run.sh: on_connect refuses a dial without a valid token (the text
// reaches neffos.js dial()), the token names the user and its rooms, OnRoomJoin refuses the rest.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { dial, neffos, withTimeout } from '../interop/lib/server.mjs';
import { startExample, sleep } from './lib/example.mjs';

const T = { timeout: 30_000 };
const UNAUTHORIZED = 'unauthorized: a valid token is required (Authorization: Bearer <token>)';
let ex;
before(async () => { ex = await startExample('auth'); });
after(async () => { await ex?.stop(); });

// A client that records its chat messages. Asynchronous ws events: see spec/interop/README.md.
async function client(t, headers, url = ex.url()) {
  const got = [];
  const conn = await dial(t, url, { default: { chat: (c, msg) => { got.push(msg.unmarshal()); } } },
    { headers, allowSynchronousEvents: false });
  const ns = await withTimeout(conn.connect('default'), 5000, 'connect default');
  return { conn, ns, got };
}

test('a dial without a valid token is refused with the on_connect text', T, async () => {
  for (const headers of [{}, { Authorization: 'Bearer nope' }, { Authorization: 'Basic alice-token' },
    { Authorization: 'Bearer' }, { Authorization: 'Bearer alice-token extra' }]) {
    // neffos.js rejects with the refusal text (a string or an Error, depending on the path).
    const err = await withTimeout(neffos.dial(ex.url(), { default: {} }, { headers }).then(
      (c) => { c.close(); return null; }, (e) => e), 5000, `dial with ${JSON.stringify(headers)}`);
    assert.ok(err, `dial with ${JSON.stringify(headers)} must be refused`);
    assert.equal(err?.message ?? String(err), UNAUTHORIZED, JSON.stringify(headers));
  }
  assert.match(ex.logs(), /refused a connection from .*no valid token/);
});

test('a valid token: the header, or the query parameter a browser sends; the ID is the user', T, async (t) => {
  const alice = await client(t, { Authorization: 'Bearer alice-token' });
  assert.equal(alice.conn.ID, 'alice');
  assert.deepEqual(JSON.parse((await withTimeout(alice.ns.ask('rooms', ''), 5000, 'rooms')).Body), ['dev', 'lobby']);

  const bob = await client(t, {}, ex.url('/echo?X-Websocket-Header-Authorization=Bearer%20bob-token'));
  assert.equal(bob.conn.ID, 'bob');
  assert.deepEqual(JSON.parse((await withTimeout(bob.ns.ask('rooms', ''), 5000, 'rooms')).Body), ['lobby']);
});

test('a room the token does not allow is refused: joinRoom rejects with the text', T, async (t) => {
  const alice = await client(t, { Authorization: 'Bearer alice-token' });
  const bob = await client(t, { Authorization: 'Bearer bob-token' });
  await withTimeout(alice.ns.joinRoom('dev'), 5000, 'alice joins dev');
  await withTimeout(alice.ns.joinRoom('lobby'), 5000, 'alice joins lobby');
  await withTimeout(bob.ns.joinRoom('lobby'), 5000, 'bob joins lobby');

  const err = await withTimeout(bob.ns.joinRoom('dev').then(() => null, (e) => e), 5000, 'bob joins dev');
  assert.ok(err, 'bob must not join dev');
  assert.equal(err?.message ?? String(err), 'forbidden: bob may not join room "dev"');
  assert.equal(bob.ns.room('dev'), undefined, 'no local room after a refusal');

  // The server did not add bob to dev either: dev's talk does not reach him, lobby's does.
  assert.ok(alice.ns.room('dev').emit('chat', JSON.stringify({ text: 'dev only' })));
  assert.ok(alice.ns.room('lobby').emit('chat', JSON.stringify({ text: 'for the lobby' })));
  await withTimeout((async () => { while (!bob.got.length) await sleep(20); })(), 5000, 'bob gets the lobby message');
  await sleep(300);
  assert.deepEqual(bob.got, [{ from: 'alice', text: 'for the lobby' }]);
});
