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
