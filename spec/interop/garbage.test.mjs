// Garbage frames (docs/protocol.md §3.4, §5.9, §5.10, §17.1.5, §17.3.1, §17.3.5): invalid frames are dropped and the
// connection lives on; invalid UTF-8 and oversized messages close THAT connection only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, withTimeout, defaultMaxMessageBytes } from './lib/server.mjs';

const h = useServer(appPath('events.lua'));

// A neffos.js client that must keep working while others misbehave (made on first use: root-level
// before() hooks run concurrently in Node 20, so it cannot be a second before hook).
let bystander;
async function bystanderWorks(what) {
  if (!bystander) {
    const conn = await dial(null, h.server.url(), { default: {} });
    bystander = { conn, ns: await withTimeout(conn.connect('default'), 5000, 'bystander connect') };
  }
  const r = await withTimeout(bystander.ns.ask('echo', what), 5000, `bystander ask after ${what}`);
  assert.equal(r.Body, `echo back: ${what}`);
}
after(() => bystander?.conn.close());

async function rawDefault(t) {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$0;default;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  return c;
}

// Deterministic pseudo-random strings (xorshift), so a failure can be reproduced.
function* randomFrames(seed, n) {
  let x = seed;
  const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const alphabet = 'abcXYZ019 $#;;;;_-@%!\n';
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = 1 + (rnd() % 40);
    for (let j = 0; j < len; j++) s += alphabet[rnd() % alphabet.length];
    // Keep them non-neffos: fewer than six ';' (a seven-field frame would be a real message).
    if ((s.match(/;/g) || []).length >= 6) s = s.replace(/;/g, ',');
    yield s;
  }
}

test('non-neffos text frames are dropped silently; the connection lives on (5.10, 17.3.5)', T, async (t) => {
  await bystanderWorks('before garbage');
  const c = await rawDefault(t);
  const frames = ['garbage', 'hello', 'M', 'A', 'Hsomething', ';', ';;;;;', 'x;y;z', ...randomFrames(0x2545f491, 100)];
  for (const f of frames) c.sendText(f);
  await c.expectNothing(500, 'no answer to garbage');
  assert.equal(c.isOpen(), true);
  assert.equal(await c.ask('$1;default;;echo;0;0;alive'), '$1;default;;echo;0;0;echo back: alive');
  await bystanderWorks('garbage text');
});

test('five-separator frames are invalid on the server and dropped (17.3.1, C04, G08)', T, async (t) => {
  const c = await rawDefault(t);
  c.sendText(';default;;echo;0;0');
  c.sendText('$9;default;;echo;0;0');
  c.sendText('$10;default;;fail;0;0');
  await c.expectNothing(400, 'no answer to 5-separator frames');
  assert.equal(await c.ask('$11;default;;echo;0;0;alive'), '$11;default;;echo;0;0;echo back: alive');
});

test('empty frames are ignored; binary frames with fewer than six ";" are dropped (17.1.5, C18)', T, async (t) => {
  const c = await rawDefault(t);
  c.sendText('');
  c.sendBinary(Buffer.alloc(0));
  c.sendBinary(Buffer.from(';default;;bin;0;0'));
  c.sendBinary(Buffer.from([0xff, 0xfe, 0x00, 0x3b, 0x80]));
  await c.expectNothing(400, 'no answer');
  assert.equal(await c.ask('$1;default;;echo;0;0;alive'), '$1;default;;echo;0;0;echo back: alive');
});

test('invalid UTF-8 in a text frame closes that connection with 1007; others keep working (3.4)', T, async (t) => {
  const bad = await rawDefault(t);
  const good = await rawDefault(t);
  bad.sendTextBytes(Buffer.concat([Buffer.from('$1;default;;echo;0;0;'), Buffer.from([0xc3, 0x28, 0xff])]));
  const { code } = await bad.waitClose(5000);
  assert.equal(code, 1007);
  assert.equal(await good.ask('$2;default;;echo;0;0;still'), '$2;default;;echo;0;0;echo back: still');
  await bystanderWorks('invalid utf-8');
});

test('a message over the maximum size closes that connection with 1009; others keep working', T, async (t) => {
  const max = defaultMaxMessageBytes();
  const big = await rawDefault(t);
  const head = '$1;default;;len;0;0;';
  // Just under the limit is served...
  big.sendText(head + 'x'.repeat(max - head.length));
  assert.equal(await big.nextText(10_000, 'len of a message at the limit'), `${head}${max - head.length}`);
  // ...one byte more is refused.
  big.sendText(head + 'x'.repeat(max - head.length + 1));
  const { code } = await big.waitClose(10_000);
  assert.equal(code, 1009);
  await bystanderWorks('oversized message');
});
