// RFC 6455 strictness over TCP, ported from the Autobahn TestSuite groups 1-7 (which cannot
// run here). Each case writes hand-made frames on a raw socket to a native-only echo app and
// asserts what the RFC asks for: the echo / pong, or the server's close frame with its status
// code (1002 protocol error, 1007 invalid payload, 1009 too big) and the end of the TCP
// connection. spec/c/test_ws.c runs the same cases against host/ws/ws.c without sockets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, T, useServer } from '../interop/lib/server.mjs';
import { RawWs, frame, OP, closePayload } from './lib/raw.mjs';

const MAX = 65536;
const srv = useServer(path.join(ROOT, 'spec', 'robust', 'apps', 'raw_echo.lua'), {
  args: ['--max-message-bytes', String(MAX), '--no-watch'],
  endpoint: '/raw',
});

const open = (t) => RawWs.open(t, srv.server.port, '/raw');

async function expectClose(ws, code, what) {
  const f = await ws.closeFrame();
  assert.equal(f.code, code, `${what}: close code`);
  assert.equal(ws.protocolError, null);
}

async function expectEcho(ws, opcode, payload, what) {
  const f = await ws.next(3000, `echo of ${what}`);
  assert.equal(f.opcode, opcode, `${what}: opcode`);
  assert.ok(f.fin, `${what}: FIN`);
  assert.ok(f.payload.equals(Buffer.from(payload)), `${what}: payload (${f.payload.length} bytes)`);
}

const bytes = (...b) => Buffer.from(b);
const filled = (n, v = 0x2a) => Buffer.alloc(n, v);

// ---- 1. framing: echo of text and binary at the length-encoding boundaries ------------------

test('1.1/1.2 text and binary messages of 1..65536 bytes are echoed', T, async (t) => {
  const ws = await open(t);
  for (const n of [1, 125, 126, 127, 128, 65535, MAX]) {
    ws.send(OP.TEXT, filled(n));
    await expectEcho(ws, OP.TEXT, filled(n), `text ${n}`);
    ws.send(OP.BIN, filled(n, 0xfe));
    await expectEcho(ws, OP.BIN, filled(n, 0xfe), `binary ${n}`);
  }
  await ws.quiet();
});

test('1.1.1/1.2.1 empty messages are valid but carry nothing: no echo, the connection stays (docs/protocol.md §17.1.5)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.TEXT, '');
  ws.send(OP.BIN, '');
  await ws.quiet();
  ws.send(OP.TEXT, 'after');
  await expectEcho(ws, OP.TEXT, 'after', 'the frame after the empty ones');
});

test('1.x a frame written one byte at a time is echoed', T, async (t) => {
  const ws = await open(t);
  const f = frame(OP.TEXT, 'slowly, byte by byte');
  for (const b of f) { ws.write(Buffer.from([b])); await new Promise((r) => setImmediate(r)); }
  await expectEcho(ws, OP.TEXT, 'slowly, byte by byte', 'bytewise frame');
});

test('9.x-like: one byte over --max-message-bytes is closed with 1009', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.BIN, filled(MAX + 1));
  await expectClose(ws, 1009, 'max + 1');
});

test('9.x-like: fragments that add up to one byte over the maximum: 1009', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.TEXT, filled(MAX / 2), { fin: false });
  ws.send(OP.CONT, filled(MAX / 2), { fin: false });
  await ws.quiet(100);
  ws.send(OP.CONT, filled(1));
  await expectClose(ws, 1009, 'fragments over the maximum');
});

test('a huge announced length is refused (1009) before any payload arrives', T, async (t) => {
  const ws = await open(t);
  ws.write(frame(OP.BIN, Buffer.alloc(0), { len: 1n << 40n }));
  await expectClose(ws, 1009, '1 TiB announced');
});

test('a 64-bit length with the top bit set is a protocol error (1002)', T, async (t) => {
  const ws = await open(t);
  ws.write(frame(OP.BIN, Buffer.alloc(0), { len: (1n << 63n) + 5n }));
  await expectClose(ws, 1002, 'top bit set');
});

test('a non-minimal length encoding is a protocol error (1002)', T, async (t) => {
  const ws = await open(t);
  ws.write(bytes(0x81, 0xfe, 0x00, 0x05), Buffer.from([1, 2, 3, 4]), filled(5));
  await expectClose(ws, 1002, '16-bit length for 5 bytes');
});

test('an unmasked client frame is a protocol error (1002)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.TEXT, 'Hello', { mask: false });
  await expectClose(ws, 1002, 'unmasked');
});

// ---- 2. ping / pong ---------------------------------------------------------------------------

test('2.1-2.4 ping is answered with a pong carrying the same payload (0, text, 125 binary)', T, async (t) => {
  const ws = await open(t);
  const big = Buffer.from(Array.from({ length: 125 }, (_, i) => (i * 7) & 0xff));
  for (const p of [Buffer.alloc(0), Buffer.from('Hello, world!'), big]) {
    ws.send(OP.PING, p);
    await expectEcho(ws, OP.PONG, p, `ping ${p.length}`);
  }
  await ws.quiet();
});

test('2.5 ping with a 126-byte payload is a protocol error (1002)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.PING, filled(126));
  await expectClose(ws, 1002, 'ping 126');
});

test('2.6/2.7 an unsolicited pong is ignored; 10 pings get 10 pongs', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.PONG, 'unsolicited');
  await ws.quiet();
  for (let i = 0; i < 10; i++) ws.send(OP.PING, `p${i}`);
  for (let i = 0; i < 10; i++) await expectEcho(ws, OP.PONG, `p${i}`, `ping ${i}`);
});

// ---- 3. reserved bits ---------------------------------------------------------------------------

for (const [rsv, opcode, name] of [[1, OP.TEXT, 'text'], [2, OP.TEXT, 'text'], [3, OP.TEXT, 'text after a valid one'],
  [4, OP.BIN, 'binary'], [5, OP.PING, 'ping'], [6, OP.CLOSE, 'close'], [7, OP.TEXT, 'text']]) {
  test(`3.x RSV ${rsv} on a ${name} frame is a protocol error (1002)`, T, async (t) => {
    const ws = await open(t);
    if (rsv === 3) {
      ws.send(OP.TEXT, 'Hello');
      await expectEcho(ws, OP.TEXT, 'Hello', 'the valid frame before');
    }
    ws.send(opcode, opcode === OP.CLOSE ? closePayload(1000) : 'Hello', { rsv });
    await expectClose(ws, 1002, `RSV ${rsv}`);
  });
}

// ---- 4. opcodes ---------------------------------------------------------------------------------

for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
  test(`4.x reserved opcode ${op} is a protocol error (1002), after an echo`, T, async (t) => {
    const ws = await open(t);
    ws.send(OP.TEXT, 'before');
    ws.send(op, op % 2 ? 'reserved' : '');
    await expectEcho(ws, OP.TEXT, 'before', 'the frame before');
    await expectClose(ws, 1002, `opcode ${op}`);
  });
}

// ---- 5. fragmentation ---------------------------------------------------------------------------

test('5.1/5.2 fragmented ping and pong are protocol errors (1002)', T, async (t) => {
  for (const op of [OP.PING, OP.PONG]) {
    const ws = await open(t);
    ws.send(op, 'frag', { fin: false });
    ws.send(OP.CONT, 'ment');
    await expectClose(ws, 1002, `fragmented ${op}`);
  }
});

test('5.3-5.5 a fragmented text message is echoed as one message (2 and 20 fragments)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.TEXT, 'frag', { fin: false });
  ws.send(OP.CONT, 'ment');
  await expectEcho(ws, OP.TEXT, 'fragment', 'two fragments');
  const text = 'abcdefghijklmnopqrst';
  for (let i = 0; i < text.length; i++) {
    ws.send(i === 0 ? OP.BIN : OP.CONT, text[i], { fin: i === text.length - 1 });
  }
  await expectEcho(ws, OP.BIN, text, 'twenty fragments');
});

test('5.6-5.8 control frames between fragments are answered; the message is whole', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.TEXT, 'frag', { fin: false });
  ws.send(OP.PING, 'in between');
  await expectEcho(ws, OP.PONG, 'in between', 'the pong mid-message');
  ws.send(OP.CONT, 'men', { fin: false });
  ws.send(OP.PONG, '');
  ws.send(OP.CONT, 'ted');
  await expectEcho(ws, OP.TEXT, 'fragmented', 'the message');
  await ws.quiet();
});

test('5.9-5.14 a continuation without a started message is a protocol error (1002)', T, async (t) => {
  for (const fin of [true, false]) {
    const ws = await open(t);
    ws.send(OP.CONT, 'orphan', { fin });
    await expectClose(ws, 1002, `continuation, fin=${fin}`);
  }
  const ws = await open(t);
  ws.send(OP.TEXT, 'done');
  await expectEcho(ws, OP.TEXT, 'done', 'a complete message');
  ws.send(OP.CONT, 'more');
  await expectClose(ws, 1002, 'continuation after a final frame');
});

test('5.17-5.20 a new data frame inside a fragmented message is a protocol error (1002)', T, async (t) => {
  for (const [second, fin] of [[OP.TEXT, true], [OP.BIN, false]]) {
    const ws = await open(t);
    ws.send(OP.TEXT, 'one', { fin: false });
    ws.send(second, 'two', { fin });
    await expectClose(ws, 1002, `interleaved opcode ${second}`);
  }
});

// ---- 6. UTF-8 -------------------------------------------------------------------------------------

const INVALID_UTF8 = {
  'Autobahn 6.3.1 (surrogate inside)': bytes(0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5,
    0xed, 0xa0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64),
  'overlong NUL': bytes(0xc0, 0x80),
  'overlong slash': bytes(0xe0, 0x80, 0xaf),
  'lone continuation byte': bytes(0x80),
  'byte 0xfe': bytes(0xfe),
  'byte 0xff': bytes(0x61, 0xff),
  'above U+10FFFF': bytes(0xf4, 0x90, 0x80, 0x80),
  'high surrogate U+D800': bytes(0xed, 0xa0, 0x80),
  'truncated sequence at the end': bytes(0x61, 0xe2, 0x82),
};

for (const [name, payload] of Object.entries(INVALID_UTF8)) {
  test(`6.x invalid UTF-8 in a text message (${name}) is closed with 1007`, T, async (t) => {
    const ws = await open(t);
    ws.send(OP.TEXT, payload);
    await expectClose(ws, 1007, name);
  });
}

test('6.x valid UTF-8 split inside a code point across fragments is echoed', T, async (t) => {
  const ws = await open(t);
  const text = Buffer.from('κόσμε 𝄞 ok', 'utf8');
  for (let cut = 1; cut < 8; cut++) {
    ws.send(OP.TEXT, text.slice(0, cut), { fin: false });
    ws.send(OP.CONT, text.slice(cut));
    await expectEcho(ws, OP.TEXT, text, `cut at ${cut}`);
  }
});

test('6.x fail fast: invalid bytes in a middle fragment close at once (no final fragment sent)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.TEXT, Buffer.from('κόσμε', 'utf8'), { fin: false });
  await ws.quiet(100);
  ws.send(OP.CONT, bytes(0xf4, 0x90, 0x80, 0x80), { fin: false });
  await expectClose(ws, 1007, 'invalid middle fragment');
});

test('6.x fail fast: invalid bytes in the first part of a frame close before the frame ends', T, async (t) => {
  const ws = await open(t);
  const payload = Buffer.concat([bytes(0xce, 0xba, 0xed, 0xa0, 0x80), filled(200)]);
  const f = frame(OP.TEXT, payload);
  ws.write(f.slice(0, 4 + 4 + 10));   // header (16-bit length) + mask + 10 bytes; 190 never sent
  await expectClose(ws, 1007, 'partial frame');
});

// ---- 7. close handshake ----------------------------------------------------------------------------

test('7.1.x a close is answered with the same code and the server ends TCP; later frames are ignored', T, async (t) => {
  const ws = await open(t);
  ws.write(frame(OP.CLOSE, closePayload(1000, 'bye')), frame(OP.TEXT, 'after close'));
  await expectClose(ws, 1000, 'normal close');
  assert.equal(ws.frames.length, 0, 'no echo of the frame sent after the close');
});

test('7.3.1 an empty close is answered with an empty close', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.CLOSE, Buffer.alloc(0));
  const f = await ws.closeFrame();
  assert.equal(f.payload.length, 0);
});

test('7.3.2 a close with a 1-byte payload is a protocol error (1002)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.CLOSE, bytes(0x03));
  await expectClose(ws, 1002, '1-byte close');
});

test('7.3.6 a close with a 126-byte payload is a protocol error (1002)', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.CLOSE, closePayload(1000, 'x'.repeat(124)));
  await expectClose(ws, 1002, 'close 126');
});

test('7.3.5 a close with a 123-byte reason is echoed', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.CLOSE, closePayload(1000, 'r'.repeat(123)));
  await expectClose(ws, 1000, 'close 125');
});

for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
  test(`7.7.x close code ${code} is valid and echoed`, T, async (t) => {
    const ws = await open(t);
    ws.send(OP.CLOSE, closePayload(code, 'ok'));
    await expectClose(ws, code, `code ${code}`);
  });
}

for (const code of [0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
  test(`7.9.x close code ${code} is invalid: 1002`, T, async (t) => {
    const ws = await open(t);
    ws.send(OP.CLOSE, closePayload(code));
    await expectClose(ws, 1002, `code ${code}`);
  });
}

test('7.5.1 a close reason with invalid UTF-8 is closed with 1007', T, async (t) => {
  const ws = await open(t);
  ws.send(OP.CLOSE, closePayload(1000, bytes(0xce, 0xba, 0xed, 0xa0, 0x80, 0x65)));
  await expectClose(ws, 1007, 'invalid reason');
});

test('a close frame split across TCP writes is judged whole (valid reason echoed, invalid one 1007)', T, async (t) => {
  const good = frame(OP.CLOSE, closePayload(4000, Buffer.from('ok κόσμε', 'utf8')));
  const bad = frame(OP.CLOSE, closePayload(4000, bytes(0x6f, 0x6b, 0xce, 0xba, 0xed, 0xa0, 0x80, 0x78)));
  for (const [f, code] of [[good, 4000], [bad, 1007]]) {
    for (const cut of [7, 8, 9, 11]) {
      const ws = await open(t);
      ws.write(f.slice(0, cut));
      await new Promise((r) => setTimeout(r, 30));
      ws.write(f.slice(cut));
      await expectClose(ws, code, `cut at ${cut}`);
    }
  }
});

test('the server goes on: a new connection is echoed after all of the above', T, async (t) => {
  srv.server.assertAlive();
  const ws = await open(t);
  ws.send(OP.TEXT, 'still here');
  await expectEcho(ws, OP.TEXT, 'still here', 'after the hostile cases');
});
