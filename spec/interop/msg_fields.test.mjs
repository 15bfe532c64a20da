// A handler's msg (docs/lua-api.md, "The message msg"), driven by the real neffos.js: each
// field reads as documented, while the table holds only the fields that differ from their
// defaults (room "", the flags false come from its metatable: bindings/lua_message.c).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, withTimeout, eventually, neffos } from './lib/server.mjs';

const h = useServer(appPath('msg_fields.lua'), { args: ['--no-watch'] });

async function connect(t, handlers = {}) {
  const got = [];
  const conn = await dial(t, h.server.url('/echo'), {
    fields: { described: (c, msg) => { got.push(msg.Body); }, ...handlers },
  });
  const nsc = await withTimeout(conn.connect('fields'), 5000, 'connect fields');
  return { conn, nsc, got };
}

test('an ask: the defaults read through, the table holds namespace, event, body and token', T, async (t) => {
  const { nsc } = await connect(t);
  const m = await withTimeout(nsc.ask('describe', 'hi'), 5000, 'ask describe');
  assert.equal(m.Body, 'room="" binary=false local=false forced=false native=false err=nil token=set ' +
    'unmarshal=function raw=body,event,namespace,token');
});

test('an event in a room: the room is a field of its own', T, async (t) => {
  const { nsc, got } = await connect(t);
  const room = await withTimeout(nsc.joinRoom('lobby'), 5000, 'join lobby');
  room.emit('describe', 'x');
  await eventually(() => got.length === 1, 'described');
  assert.equal(got[0], 'room="lobby" binary=false local=false forced=false native=false err=nil token=nil ' +
    'unmarshal=function raw=body,event,namespace,room');
});

test("an ask's answer from the client is built the same way", T, async (t) => {
  const { nsc } = await connect(t, { question: (c, msg) => neffos.reply(`re: ${msg.Body}`) });
  const m = await withTimeout(nsc.ask('ask_back', 'q'), 5000, 'ask ask_back');
  assert.equal(m.Body, 'room="" binary=false local=false forced=false native=false err=nil token=set ' +
    'unmarshal=function raw=body,event,namespace,token body=re: q');
});

test('a received msg, ask token and all, can be relayed with server:broadcast', T, async (t) => {
  const seen = [];
  const { nsc } = await connect(t, { relay: (c, msg) => { seen.push(msg.Body); } });
  const other = await connect(t, { relay: (c, msg) => { seen.push(`other: ${msg.Body}`); } });
  const m = await withTimeout(nsc.ask('relay', 'pass it on'), 5000, 'ask relay');
  assert.equal(m.Body, 'relayed to some; a plain table with a token: unknown option token');
  await eventually(() => seen.length === 2, 'both got the relay');
  assert.deepEqual(seen.sort(), ['other: pass it on', 'pass it on']);
  void other;
});

test('msg.except = ns on a received msg leaves the sender out of the relay', T, async (t) => {
  const seen = [];
  const { nsc } = await connect(t, { relay_others: (c, msg) => { seen.push(`sender: ${msg.Body}`); } });
  await connect(t, { relay_others: (c, msg) => { seen.push(`other: ${msg.Body}`); } });
  assert.equal((await withTimeout(nsc.ask('relay_others', 'psst'), 5000, 'ask relay_others')).Body, 'relayed');
  await eventually(() => seen.length === 1, 'the other got it');
  await withTimeout(nsc.ask('describe', 'after'), 5000, 'a later ask');   // the sender's copy would be here by now
  assert.deepEqual(seen, ['other: psst']);
});
