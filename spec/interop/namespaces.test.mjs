// Namespaces (docs/protocol.md §7.2, §7.4, §7.8, §7.9, §17.5): connect, refusal, bad namespace, already connected,
// disconnect by the client, and the local events when a client closes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, eventually, withTimeout } from './lib/server.mjs';

const h = useServer(appPath('namespaces.lua'));
let seq = 0;
const user = (what) => `${what}-${process.pid}-${++seq}`;

// The lifecycle notes the app keeps about connection `id` (asked over a separate connection).
async function history(t, id) {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$c;default;;_OnNamespaceConnect;0;0;'), '$c;;;;;;');
  assert.equal(await c.nextText(5000, 'welcome'), `;default;;welcome;0;0;welcome ${c.id}`);
  const prefix = '$h;default;;history;0;0;';
  const answer = await c.ask(prefix + id);
  assert.ok(answer.startsWith(prefix), `history answer ${JSON.stringify(answer)}`);
  c.close();
  return answer.slice(prefix.length).split('\n').filter(Boolean);
}

test('neffos.js connect() resolves; events emitted in OnNamespaceConnected arrive after (7.2)', T, async (t) => {
  let welcome;
  const got = new Promise((resolve) => { welcome = resolve; });
  // One message per tick (ws's allowSynchronousEvents=false, the behaviour before ws 8.17).
  const conn = await dial(t, h.server.url(), { default: { welcome: (ns, msg) => welcome(msg.Body) } },
    { allowSynchronousEvents: false });
  const ns = await withTimeout(conn.connect('default'), 5000, 'connect');
  assert.equal(ns.namespace, 'default');
  assert.equal(await withTimeout(got, 5000, 'welcome event'), `welcome ${conn.ID}`);
  assert.equal((await withTimeout(ns.ask('echo', 'hi'), 5000, 'ask')).Body, 'echo back: hi');
});

test('neffos.js with default ws options also gets the OnNamespaceConnected emit', T, async (t) => {
  // neffos.js registers the namespace in a promise continuation after the connect reply, and
  // ws >= 8.17 handles every frame of one TCP read before any continuation runs: the server's
  // ping barrier (docs/architecture.md) makes the welcome arrive in a later read.
  let welcome;
  const got = new Promise((resolve) => { welcome = resolve; });
  const conn = await dial(t, h.server.url(), { default: { welcome: (ns, msg) => welcome(msg.Body) } });
  await withTimeout(conn.connect('default'), 5000, 'connect');
  assert.equal(await withTimeout(got, 5000, 'welcome event'), `welcome ${conn.ID}`);
});

test('raw: connect gets the empty reply "$T;;;;;;", then the welcome event (7.2, 5.7)', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await c.nextText(5000, 'welcome'), `;default;;welcome;0;0;welcome ${c.id}`);
});

test('connecting an already connected namespace: empty reply, no events fire again (7.9)', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  assert.equal(await c.nextText(5000, 'welcome'), `;default;;welcome;0;0;welcome ${c.id}`);
  assert.equal(await c.ask('$2;default;;_OnNamespaceConnect;0;0;'), '$2;;;;;;');
  await c.expectNothing(300, 'no second welcome');
});

test('refused connect: connect() rejects with the OnNamespaceConnect error text (7.2)', T, async (t) => {
  const conn = await dial(t, h.server.url(), { default: {}, private: {} });
  await assert.rejects(withTimeout(conn.connect('private'), 5000, 'connect private'),
    (err) => err instanceof Error && err.message === 'private: access denied');
  assert.equal(conn.namespace('private'), undefined, 'not connected on the client');
});

test('raw: refused connect is "$T;private;;_OnNamespaceConnect;1;0;<text>" and the namespace stays closed', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$3;private;;_OnNamespaceConnect;0;0;'),
    '$3;private;;_OnNamespaceConnect;1;0;private: access denied');
  // Not connected: an event to it gets nothing, or at most a "bad namespace" error (docs/protocol.md §17.5.4).
  c.sendText('$4;private;;echo;0;0;x');
  await expectNothingOrBadNamespace(c, '$4;private;;echo;1;0;bad namespace');
});

test('bad namespace: neffos.js connect() to a namespace the server lacks rejects with "bad namespace"', T, async (t) => {
  // neffos.js refuses locally for names missing from its own handler map, so declare it here.
  const conn = await dial(t, h.server.url(), { default: {}, nope: {} });
  await assert.rejects(withTimeout(conn.connect('nope'), 5000, 'connect nope'),
    (err) => err instanceof Error && err.message === 'bad namespace');
});

test('raw: bad namespace bytes are "$T;nope;;_OnNamespaceConnect;1;0;bad namespace" (D03)', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$T;nope;;_OnNamespaceConnect;0;0;'), '$T;nope;;_OnNamespaceConnect;1;0;bad namespace');
});

test('raw: a connect request with isNoOp=1 or without a token is ignored (7.2, 17.5.6)', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  c.sendText('$17;default;;_OnNamespaceConnect;0;1;');
  c.sendText(';default;;_OnNamespaceConnect;0;0;');
  await c.expectNothing(400, 'no reply and no welcome');
  // Not connected by either: a real connect still fires the events.
  assert.equal(await c.ask('$18;default;;_OnNamespaceConnect;0;0;'), '$18;;;;;;');
  assert.equal(await c.nextText(5000, 'welcome'), `;default;;welcome;0;0;welcome ${c.id}`);
});

test('events to a namespace not connected get no answer (6 rule 5, 17.5.4)', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  c.sendText('$12;default;;echo;0;0;x');
  await expectNothingOrBadNamespace(c, '$12;default;;echo;1;0;bad namespace');
});

test('client disconnect: nsConn.disconnect() resolves null; the server fired OnNamespaceDisconnect (7.4)', T, async (t) => {
  const id = user('leaver');
  const conn = await dial(t, h.server.url(), { default: {} }, { headers: { 'X-Username': id } });
  const ns = await conn.connect('default');
  assert.equal(await withTimeout(ns.disconnect(), 5000, 'disconnect'), null);
  assert.equal(conn.namespace('default'), undefined);
  const notes = await history(t, id);
  assert.deepEqual(notes, [
    `${id} connect default`,
    `${id} connected default`,
    `${id} disconnect default forced=false local=false`,
  ]);
});

test('raw: disconnect replies "$T;;;;;;", also when not connected; events then get nothing (7.4, E01, E02)', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$14;default;;_OnNamespaceDisconnect;0;0;'), '$14;;;;;;', 'not connected yet');
  assert.equal(await c.ask('$1;default;;_OnNamespaceConnect;0;0;'), '$1;;;;;;');
  await c.nextText(5000, 'welcome');
  assert.equal(await c.ask('$15;default;;_OnNamespaceDisconnect;0;0;'), '$15;;;;;;');
  c.sendText('$16;default;;echo;0;0;after');
  await expectNothingOrBadNamespace(c, '$16;default;;echo;1;0;bad namespace');
  // And it can connect again.
  assert.equal(await c.ask('$17;default;;_OnNamespaceConnect;0;0;'), '$17;;;;;;');
  assert.equal(await c.nextText(5000, 'welcome'), `;default;;welcome;0;0;welcome ${c.id}`);
  assert.equal(await c.ask('$18;default;;echo;0;0;again'), '$18;default;;echo;0;0;echo back: again');
});

test('client close: the server fires OnNamespaceDisconnect (forced, local), then on_disconnect (7.8)', T, async (t) => {
  const id = user('closer');
  const conn = await dial(t, h.server.url(), { default: {} }, { headers: { 'X-Username': id } });
  await conn.connect('default');
  conn.close();
  const notes = await eventually(async () => {
    const n = await history(t, id);
    return n.some((l) => l.endsWith('on_disconnect')) && n;
  }, 'on_disconnect noted by the server');
  assert.deepEqual(notes, [
    `${id} connect default`,
    `${id} connected default`,
    `${id} disconnect default forced=true local=true`,
    `${id} on_disconnect`,
  ]);
});

async function expectNothingOrBadNamespace(c, badNamespaceFrame) {
  try {
    await c.expectNothing(400, 'no answer for a namespace that is not connected');
  } catch (e) {
    if (e.frame?.text !== badNamespaceFrame) throw e;
  }
}
