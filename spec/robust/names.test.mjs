// Name bounds (--max-name-bytes, --max-name-bytes-per-conn): namespace, room and event names over the
// bound are refused with the protocol's error answer before the server looks them up or keeps them,
// from a raw client, from neffos.js and from the app's own forced actions; the connection stays usable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, RawClient, rawHttp, startServer, dial, serveFor, rawIn, metricOf } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'names.lua');
const T = { timeout: 60_000 };
const MAX = 256;   // the documented default of --max-name-bytes

const serve = (t, args = [], opts = {}) => serveFor(t, APP, args, opts);

const v1 = (t, s) => rawIn(t, s, 'v1');

const metric = metricOf;

const logLines = (s, re) => s.logs().split('\n').filter((l) => re.test(l));

test('raw client: over-long namespace, room and event names get an error answer; the connection stays', T, async (t) => {
  const s = await serve(t);
  const c = await v1(t, s);
  const long = (ch) => ch.repeat(MAX + 1);
  assert.equal(await c.ask(`$1;${long('n')};;_OnNamespaceConnect;0;0;`),
    `$1;${long('n')};;_OnNamespaceConnect;1;0;name too long`);
  assert.equal(await c.ask(`$2;v1;${long('r')};_OnRoomJoin;0;0;`), `$2;v1;${long('r')};_OnRoomJoin;1;0;name too long`);
  assert.equal(await c.ask(`$3;v1;;${long('e')};0;0;body`), `$3;v1;;${long('e')};1;0;name too long`);
  assert.equal(await c.ask(`$4;v1;${long('r')};echo;0;0;body`), `$4;v1;${long('r')};echo;1;0;name too long`);
  // A 1 MB room name: refused the same way (and not kept).
  const huge = 'h'.repeat((1 << 20) - 64);
  assert.equal(await c.ask(`$5;v1;${huge};_OnRoomJoin;0;0;`), `$5;v1;${huge};_OnRoomJoin;1;0;name too long`);
  // Without a token there is nobody to answer: dropped, as the protocol does with other refusals.
  c.sendText(`;v1;${long('r')};_OnRoomJoin;0;0;`);
  c.sendText(`;v1;;${long('e')};0;0;x`);
  await c.expectNothing(300, 'no answer to refused frames without a token');
  // Exactly at the bound is fine, and the connection is still usable.
  assert.equal(await c.ask(`$6;v1;${'r'.repeat(MAX)};_OnRoomJoin;0;0;`), '$6;;;;;;');
  assert.equal(await c.ask('$7;v1;;echo;0;0;still here'), '$7;v1;;echo;0;0;still here');
  assert.equal(await metric(s, 'neffos_limit_hits_total{limit="name_bytes"}'), 7);
  assert.equal(logLines(s, /limit hit: name longer than --max-name-bytes/).length, 1, 'logged once per connection');
});

test('--max-name-bytes-per-conn: the sum of a connection\'s names is bounded; leaving gives room back', T, async (t) => {
  // "v1" (2 bytes) + two rooms of 40 = 82 <= 100; a third room would make 122.
  const s = await serve(t, ['--max-name-bytes-per-conn', '100']);
  const c = await v1(t, s);
  const room = (i) => String(i).repeat(40);
  assert.equal(await c.ask(`$1;v1;${room(1)};_OnRoomJoin;0;0;`), '$1;;;;;;');
  assert.equal(await c.ask(`$2;v1;${room(2)};_OnRoomJoin;0;0;`), '$2;;;;;;');
  assert.equal(await c.ask(`$3;v1;${room(3)};_OnRoomJoin;0;0;`), `$3;v1;${room(3)};_OnRoomJoin;1;0;too many name bytes`);
  assert.equal(await c.ask('$4;v1;;echo;0;0;ok'), '$4;v1;;echo;0;0;ok');
  assert.equal(await c.ask(`$5;v1;${room(1)};_OnRoomLeave;0;0;`), '$5;;;;;;');
  assert.equal(await c.ask(`$6;v1;${room(3)};_OnRoomJoin;0;0;`), '$6;;;;;;');
  // Forced by the app: the same bound, nil and the error in Lua.
  assert.equal(await c.ask('$7;v1;;force_join;0;0;40'), '$7;v1;;force_join;0;0;nil, too many name bytes');
  assert.equal(await metric(s, 'neffos_limit_hits_total{limit="name_bytes_per_conn"}'), 2);
  assert.equal(logLines(s, /limit hit: namespace and room names per connection/).length, 1);
});

test('neffos.js: connect, joinRoom and ask with over-long names are rejected; the connection stays usable', T, async (t) => {
  const s = await serve(t);
  const longNs = 'n'.repeat(MAX + 1);
  const conn = await dial(t, s.url(), { v1: {}, [longNs]: {} });
  await assert.rejects(conn.connect(longNs), (e) => e.message === 'name too long');
  const ns = await conn.connect('v1');
  await assert.rejects(ns.joinRoom('r'.repeat(MAX + 1)), (e) => e.message === 'name too long');
  await assert.rejects(ns.ask('e'.repeat(MAX + 1), 'x'), (e) => e.message === 'name too long');
  const ok = await ns.joinRoom('r'.repeat(MAX));
  assert.equal(ok.name, 'r'.repeat(MAX));
  const reply = await ns.ask('echo', 'after the refusals');
  assert.equal(reply.Body, 'after the refusals');
});

test('Lua: forced join and connect, and broadcasts, with over-long names return nil, err', T, async (t) => {
  const s = await serve(t);
  const c = await v1(t, s);
  assert.equal(await c.ask(`$1;v1;;force_join;0;0;${MAX + 1}`), '$1;v1;;force_join;0;0;nil, name too long');
  assert.equal(await c.ask(`$2;v1;;force_connect;0;0;${MAX + 1}`), '$2;v1;;force_connect;0;0;nil, name too long');
  assert.equal(await c.ask(`$3;v1;;broadcast_long;0;0;${MAX + 1}`), '$3;v1;;broadcast_long;0;0;nil, name too long');
  assert.equal(await c.ask(`$4;v1;;server_broadcast_long;0;0;${MAX + 1}`),
    '$4;v1;;server_broadcast_long;0;0;nil, name too long');
  assert.equal(await c.ask(`$41;v1;;server_ask_long;0;0;${MAX + 1}`), '$41;v1;;server_ask_long;0;0;nil, name too long');
  await c.expectNothing(200, 'no forced join request for a refused name');
  // At the bound the forced join goes to the client, which accepts it.
  c.sendText(`$5;v1;;force_join;0;0;${MAX}`);
  const ask = await c.nextText(5000, 'the forced join request');
  const [token, , room, event] = ask.split(';');
  assert.equal(room, 'r'.repeat(MAX));
  assert.equal(event, '_OnRoomJoin');
  c.sendText(`${token};;;;;;`);
  assert.equal(await c.nextText(5000, 'the handler result'), '$5;v1;;force_join;0;0;ok');
  assert.equal(await c.ask('$6;v1;;echo;0;0;fine'), '$6;v1;;echo;0;0;fine');
});
