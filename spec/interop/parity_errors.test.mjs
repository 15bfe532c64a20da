// Issue 3, errors (docs/protocol.md §9, §17.3.4) and the open/close pairing: error texts travel as field 6
// unescaped, known error texts, the CloseError equivalent (an error reply, then a close frame
// with a code), and on_disconnect exactly once for every connection whose on_connect ran:
// normal, refused in on_connect, closed in on_connect, raising in on_connect, closed by the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, withTimeout, eventually, sleep, neffos } from './lib/server.mjs';
import { connectAs, askBody, askError } from './lib/parity.mjs';

const h = useServer(appPath('parity_errors.lua'));
const reader = (t, name) => connectAs(t, h.server.url(), name);
const pairsOf = (ns, id) => askBody(ns, 'pairs', id);

test('error texts: ";" and newlines travel unescaped in field 6; known errors carry their wire texts (9.1-9.3)', T, async (t) => {
  const a = await reader(t, 'er-a');
  assert.equal(await askError(a.ns, 'fail_semicolon'), 'a;b;c');
  assert.equal(await askError(a.ns, 'fail_lines'), 'line 1\nline 2 κόσμε');
  assert.equal(await askError(a.ns, 'known', 'bad_namespace'), 'bad namespace');
  assert.equal(await askError(a.ns, 'known', 'bad_room'), 'bad room');
  assert.equal(await askError(a.ns, 'known', 'write'), 'write closed');
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'er-raw' } });
  assert.equal(await r.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;default;;fail_semicolon;0;0;'), '$2;default;;fail_semicolon;1;0;a;b;c');
  assert.equal(await r.ask(';default;;known;0;0;bad_room'), ';default;;known;1;0;bad room');
  // neffos.js never maps received texts onto its own error objects (docs/protocol.md §9.2)
  const e = await withTimeout(a.ns.ask('known', 'bad_namespace').catch((x) => x), 5000, 'ask');
  assert.notEqual(e, neffos.ErrBadNamespace);
  assert.equal(e.message, neffos.ErrBadNamespace.message);
});

test('CloseError equivalent: the error reply arrives, then a close frame with the code (9.4, 12.1)', T, async (t) => {
  const r = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'ce-raw' } });
  assert.equal(await r.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await r.ask('$2;default;;fatal;0;0;bye'), '$2;default;;fatal;1;0;fatal: bye');
  assert.deepEqual(await r.waitClose(5000), { code: 4000, reason: 'fatal: bye' });
  // closing before returning: the reply is not sent, the close frame is
  const r2 = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'ce-raw2' } });
  assert.equal(await r2.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  r2.sendText('$2;default;;close_then_reply;0;0;');
  assert.deepEqual(await r2.waitClose(5000), { code: 4001, reason: 'closed' });
  assert.equal(r2.frames.length, 0, 'no reply after the close frame');
  // neffos.js: the pending ask never settles (8.1: close() drops pending asks); the conn is closed
  const a = await reader(t, 'ce-js');
  const pending = a.ns.ask('fatal', 'js').then(() => 'resolved', (err) => err.message);
  assert.equal(await withTimeout(pending, 5000, 'fatal ask'), 'fatal: js');
  await eventually(() => a.conn.isClosed(), 'neffos.js closed');
  const b = await reader(t, 'ce-reader');
  for (const id of ['ce-raw', 'ce-raw2', 'ce-js']) {
    await eventually(async () => (await pairsOf(b.ns, id)) === '1 1', `${id}: one on_connect, one on_disconnect`);
  }
});

test('on_disconnect runs exactly once for every connection whose on_connect ran', T, async (t) => {
  const w = await reader(t, 'od-reader');
  // 1. normal: neffos.js closes
  const a = await reader(t, 'od-normal');
  a.conn.close();
  // 2. refused in on_connect: H<text>, dial() rejects with it (docs/protocol.md §4.3)
  await assert.rejects(dial(null, h.server.url(), { default: {} }, { headers: { 'X-Username': 'od-refused', 'X-How': 'refuse' } }),
    (e) => e.message === 'go away: od-refused');
  const rr = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'od-refused-raw', 'X-How': 'refuse' } });
  assert.equal(await rr.handshake(), 'Hgo away: od-refused-raw');
  await rr.waitClose(5000);
  // 3. closed in on_connect: "H<reason>" (so that neffos.js dial() rejects instead of waiting
  //    forever), then the close frame with the code
  const rc = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'od-closed', 'X-How': 'close' } });
  rc.sendText('M');
  assert.deepEqual(await rc.waitClose(5000), { code: 4003, reason: 'closed in on_connect' });
  assert.deepEqual(rc.frames.map((f) => f.text), ['Hclosed in on_connect'], 'H<reason>, then the close frame');
  await assert.rejects(dial(null, h.server.url(), { default: {} }, { headers: { 'X-Username': 'od-closed-js', 'X-How': 'close' } }),
    (e) => e.message === 'closed in on_connect');
  // 4. closed and refused in on_connect: the close wins, still one on_disconnect
  const rb = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'od-both', 'X-How': 'close-refuse' } });
  rb.sendText('M');
  assert.equal((await rb.waitClose(5000)).code, 4004);
  // 4b. a forced connect asked for in on_connect, then refused: the deferred connect fails and
  //     the connection is freed (the harness fails the file on a LeakSanitizer report at exit)
  const rd = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'od-deferred', 'X-How': 'connect-refuse' } });
  assert.equal(await rd.handshake(), 'Hrefused after a forced connect');
  await rd.waitClose(5000);
  // 5. on_connect raised: refused with an error text
  const rx = await RawClient.open(t, h.server.url(), { headers: { 'X-Username': 'od-raise', 'X-How': 'raise' } });
  const ans = await rx.handshake();
  assert.match(ans, /^H.*on_connect blew up/, 'refused with the error text');
  await rx.waitClose(5000);
  // 6. the client vanishes without a close frame
  const rt = await RawClient.connect(t, h.server.url(), { headers: { 'X-Username': 'od-terminated' } });
  rt.terminate();
  // 7. several at once
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => reader(t, `od-many${i}`)));
  for (const m of many) m.conn.close();

  const ids = ['od-normal', 'od-refused', 'od-refused-raw', 'od-closed', 'od-both', 'od-deferred', 'od-raise', 'od-terminated',
    ...many.map((_, i) => `od-many${i}`)];
  for (const id of ids) {
    await eventually(async () => (await pairsOf(w.ns, id)) === '1 1', `${id}: "1 1" (on_connect, on_disconnect)`);
  }
  await sleep(300);
  for (const id of ids) assert.equal(await pairsOf(w.ns, id), '1 1', `${id}: still exactly once`);
  assert.equal(await pairsOf(w.ns, 'od-reader'), '1 0', 'the reader is open: no on_disconnect yet');
});
