// Events, ask/reply and error replies (docs/protocol.md §5.6, §5.7, §6, §8.1, §9, §17.5.3), with neffos.js and raw frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { T, appPath, useServer, dial, RawClient, withTimeout, eventually, neffos } from './lib/server.mjs';

const h = useServer(appPath('events.lua'));

async function connectDefault(t, handlers = {}) {
  const conn = await dial(t, h.server.url(), { default: handlers });
  return withTimeout(conn.connect('default'), 5000, 'connect default');
}

async function rawDefault(t) {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$0;default;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  return c;
}

const ask = (ns, event, body) => withTimeout(ns.ask(event, body), 5000, `ask ${event}`);

test('ask/reply: neffos.js ask() resolves with the handler\'s string (8.1)', T, async (t) => {
  const ns = await connectDefault(t);
  const msg = await ask(ns, 'echo', 'hello');
  assert.equal(msg.Body, 'echo back: hello');
  assert.equal(msg.Err, undefined);
});

test('raw: an ask is answered with the same token, namespace and event (G02)', T, async (t) => {
  const c = await rawDefault(t);
  assert.equal(await c.ask('$5;default;;echo;0;0;ping'), '$5;default;;echo;0;0;echo back: ping');
  // Tokens are echoed byte for byte, whatever their shape (docs/protocol.md §17.3.6).
  assert.equal(await c.ask('$12345.600000001;default;;echo;0;0;x'), '$12345.600000001;default;;echo;0;0;echo back: x');
  assert.equal(await c.ask('$482000000000591300638;default;;echo;0;0;y'), '$482000000000591300638;default;;echo;0;0;echo back: y');
  // A room is carried back too (6 step 4: the same message is written back).
  assert.equal(await c.ask('$6;default;r1;echo;0;0;z'), '$6;default;r1;echo;0;0;echo back: z');
});

test('emit: the handler\'s reply arrives as an event (write-back without a token, 17.5.3, G01)', T, async (t) => {
  let resolveEcho;
  const echoed = new Promise((r) => { resolveEcho = r; });
  const ns = await connectDefault(t, { echo: (nsc, msg) => { resolveEcho(msg); } });
  assert.equal(ns.emit('echo', 'hi there'), true);
  const msg = await withTimeout(echoed, 5000, 'the echo event');
  assert.equal(msg.Event, 'echo');
  assert.equal(msg.Namespace, 'default');
  assert.equal(msg.Body, 'echo back: hi there');

  const c = await rawDefault(t);
  assert.equal(await c.ask(';default;;echo;0;0;hi;there'), ';default;;echo;0;0;echo back: hi;there');
});

test('emit: ns:emit from a handler arrives as an event of the client (10.2)', T, async (t) => {
  let resolveReply;
  const replied = new Promise((r) => { resolveReply = r; });
  const ns = await connectDefault(t, { reply: (nsc, msg) => { resolveReply(msg); } });
  ns.emit('emitback', 'x1');
  const msg = await withTimeout(replied, 5000, 'the reply event');
  assert.equal(msg.Event, 'reply');
  assert.equal(msg.Body, 'emitted: x1');

  const c = await rawDefault(t);
  assert.equal(await c.ask('$7;default;;emitback;0;0;x2'), ';default;;reply;0;0;emitted: x2');
  await c.expectNothing(300, 'nothing else: the handler returned nothing');
});

test('error reply: ask() rejects with the handler\'s error text (9.1, G03)', T, async (t) => {
  const ns = await connectDefault(t);
  await assert.rejects(ask(ns, 'fail', ''), (err) => err instanceof Error && err.message === 'something failed');
  const c = await rawDefault(t);
  assert.equal(await c.ask('$6;default;;fail;0;0;'), '$6;default;;fail;1;0;something failed');
  assert.equal(await c.ask(';default;;fail;0;0;x'), ';default;;fail;1;0;something failed', 'written back without a token too (G09)');
});

test('a handler returning nothing sends nothing (G04)', T, async (t) => {
  const c = await rawDefault(t);
  c.sendText('$8;default;;silent;0;0;');
  c.sendText(';default;;unknownEvent;0;0;x');
  await c.expectNothing(400, 'no answer');
  assert.equal(await c.ask('$9;default;;echo;0;0;still here'), '$9;default;;echo;0;0;echo back: still here');
});

test('a raised Lua error: the client gets its text, the log has file:line, the server goes on', T, async (t) => {
  const ns = await connectDefault(t);
  await assert.rejects(ask(ns, 'raise', 'b1'), (err) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /boom from lua: b1/);
    return true;
  });
  // Same connection, same handler table: still served.
  assert.equal((await ask(ns, 'echo', 'after')).Body, 'echo back: after');
  // The traceback in the log names the file and the line of the error() call.
  const src = readFileSync(appPath('events.lua'), 'utf8').split('\n');
  const line = src.findIndex((l) => l.includes('error("boom from lua: "')) + 1;
  assert.ok(line > 0);
  await eventually(() => h.server.logs().includes(`events.lua:${line}`),
    `events.lua:${line} in the server log\n${h.server.logs().slice(-2000)}`);

  const c = await rawDefault(t);
  const f = await c.ask('$r;default;;raise;0;0;b2');
  assert.match(f, /^\$r;default;;raise;1;0;.*boom from lua: b2/);
});

test('server ask answered by the client: neffos.reply() comes back to the handler (8.2, H01)', T, async (t) => {
  const seen = [];
  const ns = await connectDefault(t, {
    question: (nsc, msg) => {
      seen.push(msg.Body);
      if (msg.Body === 'no') return new Error('client says no');
      if (msg.Body === 'mute') return null;
      return neffos.reply(`js-answer:${msg.Body}`);
    },
  });
  assert.equal((await ask(ns, 'askback', 'q1')).Body, 'client said: js-answer:q1');
  await assert.rejects(ask(ns, 'askback', 'no'), (err) => err.message === 'ask failed: client says no');
  // No answer at all: the server's ask times out (docs/protocol.md §17.4.2), with the documented error "timeout".
  await assert.rejects(ask(ns, 'askquick', 'mute'), (err) => err.message === 'ask failed: timeout');
  assert.deepEqual(seen, ['q1', 'no', 'mute']);
});

test('raw: the server ask token follows 17.4.1, and replies, errors and empty replies reach the handler', T, async (t) => {
  const c = await rawDefault(t);
  const tokens = new Set();
  for (const [answer, expected] of [
    [(tok) => `${tok};default;;question;0;0;raw-answer`, '$a;default;;askback;0;0;client said: raw-answer'],
    [(tok) => `${tok};;;;;;`, '$a;default;;askback;0;0;client said: '],
    [(tok) => `${tok};default;;question;1;0;nope`, '$a;default;;askback;1;0;ask failed: nope'],
  ]) {
    c.sendText('$a;default;;askback;0;0;q');
    const q = await c.nextText(5000, 'the server\'s question');
    const m = /^([^;]*);default;;question;0;0;q$/.exec(q);
    assert.ok(m, `question frame ${JSON.stringify(q)}`);
    const tok = m[1];
    assert.ok(tok.length > 0, 'non-empty token');
    assert.doesNotMatch(tok, /^[$#]|^neffos\(0x|^.!/, `token ${tok} must not look like a client token`);
    assert.match(tok, /^[0-9]+$/, 'decimal digits (the Go-compatible choice)');
    tokens.add(tok);
    c.sendText(answer(tok));
    assert.equal(await c.nextText(5000, 'the askback answer'), expected);
  }
  assert.equal(tokens.size, 3, 'a new token per ask');
});

test('200 concurrent asks on one neffos.js connection are each matched to their reply', T, async (t) => {
  const ns = await connectDefault(t);
  const bodies = Array.from({ length: 200 }, (_, i) => `n${i}-${(i * 7919) % 1000}`);
  const replies = await withTimeout(Promise.all(bodies.map((b) => ns.ask('echo', b))), 20_000, '200 asks');
  replies.forEach((r, i) => assert.equal(r.Body, `echo back: ${bodies[i]}`));
});

test('raw: 200 asks sent at once are answered, each with its own token, in arrival order', T, async (t) => {
  const c = await rawDefault(t);
  for (let i = 0; i < 200; i++) c.sendText(`$c${i};default;;echo;0;0;b${i}`);
  for (let i = 0; i < 200; i++) {
    assert.equal(await c.nextText(5000, `answer ${i}`), `$c${i};default;;echo;0;0;echo back: b${i}`);
  }
});

test('bodies with ";", newlines, unicode and 64 KiB travel unchanged (5.1, 5.2)', T, async (t) => {
  const ns = await connectDefault(t);
  let big = '';
  for (let i = 0; big.length < 65536; i++) big += `${i};line ${i}\r\n`;
  big = big.slice(0, 65536);
  const bodies = ['a;b;c', ';;;;;;', 'body;', 'line1\nline2\r\n', 'tab\there', 'κόσμε 🌍 日本語 ευ;λ', '@%!semicolon@%!', '', big];
  for (const b of bodies) {
    assert.equal((await ask(ns, 'echo', b)).Body, `echo back: ${b}`, `body ${JSON.stringify(b.slice(0, 40))}`);
  }
  // The server sees the same byte count (UTF-8), not a transformed body.
  assert.equal((await ask(ns, 'len', 'κ🌍')).Body, String(Buffer.byteLength('κ🌍')));
  assert.equal((await ask(ns, 'len', big)).Body, '65536');

  const c = await rawDefault(t);
  assert.equal(await c.ask(';default;;echo;0;0;body\r\n'), ';default;;echo;0;0;echo back: body\r\n', 'C03: no trimming');
  assert.equal(await c.ask('$u;default;;echo;0;0;κ;λ'), '$u;default;;echo;0;0;echo back: κ;λ');
});

test('binary: emitBinary reaches the handler, whose reply comes back as a binary frame (5.8, 17.1.4)', T, async (t) => {
  const payload = new Uint8Array([0x01, 0x3b, 0xff, 0x00, 0x41]);
  let resolveBin;
  const got = new Promise((r) => { resolveBin = r; });
  const ns = await connectDefault(t, { bin: (nsc, msg) => { resolveBin(msg); } });
  assert.equal(ns.emitBinary('bin', payload), true);
  const msg = await withTimeout(got, 5000, 'the binary reply');
  assert.ok(msg.Body instanceof ArrayBuffer, 'neffos.js gives an ArrayBuffer for binary frames');
  assert.deepEqual(Buffer.from(msg.Body), Buffer.concat([Buffer.from('got:'), Buffer.from(payload)]));
  assert.equal(msg.SetBinary, true);
});

test('raw: a binary request gets a binary reply with the exact bytes; text stays text (G11)', T, async (t) => {
  const c = await rawDefault(t);
  const body = Buffer.from([0x01, 0x3b, 0xff, 0x00]);
  c.sendBinary(Buffer.concat([Buffer.from('$2;default;;bin;0;0;'), body]));
  const f = await c.next(5000, 'binary reply');
  assert.equal(f.binary, true, 'opcode 2');
  assert.deepEqual(f.data, Buffer.concat([Buffer.from('$2;default;;bin;0;0;got:'), body]));

  c.sendBinary(Buffer.from('$3;default;;kind;0;0;'));
  const k = await c.next(5000, 'kind reply');
  assert.equal(k.binary, true);
  assert.equal(k.data.toString(), '$3;default;;kind;0;0;binary', 'msg.binary is true in the handler');

  c.sendBinary(Buffer.from('$4;default;;fail;0;0;x'));
  const e = await c.next(5000, 'error reply');
  assert.equal(e.binary, true, 'error replies to binary requests are binary too');
  assert.equal(e.data.toString(), '$4;default;;fail;1;0;something failed');

  assert.equal(await c.ask('$5;default;;kind;0;0;'), '$5;default;;kind;0;0;text');
});

test('raw: ns:emit { binary = true } sends a binary frame with the exact bytes', T, async (t) => {
  const c = await rawDefault(t);
  const body = Buffer.from([0x00, 0xfe, 0x3b, 0x80, 0x7f]);
  c.sendBinary(Buffer.concat([Buffer.from(';default;;emitbin;0;0;'), body]));
  const f = await c.next(5000, 'binout');
  assert.equal(f.binary, true);
  assert.deepEqual(f.data, Buffer.concat([Buffer.from(';default;;binout;0;0;'), Buffer.from(body).reverse()]));
});

test('ordering: one connection\'s handlers run in arrival order; other connections go on (docs/lua-api.md)', T, async (t) => {
  const a = await rawDefault(t);
  const b = await rawDefault(t);
  a.sendText('$s;default;;slow;0;0;0.5');
  a.sendText('$e;default;;echo;0;0;after slow');
  // While A's handler sleeps, B is served at once.
  const started = Date.now();
  assert.equal(await b.ask('$b;default;;echo;0;0;meanwhile'), '$b;default;;echo;0;0;echo back: meanwhile');
  assert.ok(Date.now() - started < 400, 'B was not held up by A\'s sleeping handler');
  assert.equal(await a.nextText(5000, 'slow reply'), '$s;default;;slow;0;0;slept 0.5');
  assert.equal(await a.nextText(5000, 'echo reply'), '$e;default;;echo;0;0;echo back: after slow');
});

test('empty replies and empty errors: "" is a reply with an empty body, an empty error gets a text (5.6, 17.3.4)', T, async (t) => {
  const c = await rawDefault(t);
  assert.equal(await c.ask('$e;default;;empty;0;0;'), '$e;default;;empty;0;0;');
  const f = await c.ask('$f;default;;emptyerr;0;0;');
  assert.match(f, /^\$f;default;;emptyerr;1;0;.+$/, 'isError=1 never with an empty text');
  const ns = await connectDefault(t);
  assert.equal((await ask(ns, 'empty', 'x')).Body, '');
  await assert.rejects(ask(ns, 'emptyerr', 'x'), (e) => e instanceof Error && e.message.length > 0);
});

test('";" in room and event names is escaped as @%!semicolon@%! both ways (5.2, B03)', T, async (t) => {
  // (The Lua API refuses to declare a namespace whose name has a ';', so only room and event here.)
  const c = await rawDefault(t);
  assert.equal(await c.ask('$2;default;r@%!semicolon@%!1;ev@%!semicolon@%!1;0;0;a;b;c'),
    '$2;default;r@%!semicolon@%!1;ev@%!semicolon@%!1;0;0;default|r;1|ev;1|a;b;c');
  const ns = await connectDefault(t);
  assert.equal((await ask(ns, 'ev;1', 'x;y')).Body, 'default||ev;1|x;y');
});

test('only "1" means true in isError (5.5, C09, C10)', T, async (t) => {
  const c = await rawDefault(t);
  assert.equal(await c.ask('$9;default;;echo;2;0;txt'), '$9;default;;echo;0;0;echo back: txt');
  assert.equal(await c.ask('$a;default;;echo;true;0;txt'), '$a;default;;echo;0;0;echo back: txt');
  // (A "#" token, G12, is not asserted: 17.4.3 lets a server drop unmatched non-"$" tokens.)
});

test('a client frame that is itself an error is not answered with an error (no ping-pong, 17.5.3)', T, async (t) => {
  const c = await rawDefault(t);
  c.sendText(';default;;fail;1;0;client error');
  await c.expectNothing(400, 'no error written back for an error frame');
  assert.equal(await c.ask('$1;default;;echo;0;0;alive'), '$1;default;;echo;0;0;echo back: alive');
});
