// The Lua client (scripts/neffos/client.lua on host/client) against the recorded frames of
// spec/vectors/neffos-protocol-vectors.txt: a raw WebSocket server (ws) replays the server side
// of the vectors named below and checks every frame the client sends against the recorded one,
// byte for byte ("$n" client tokens may differ: any token must be echoed, docs/protocol.md §5.4).
// The client side is spec/author/lua/vectors_spec.lua, run by `neffos test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { ROOT, BIN, withTimeout } from '../interop/lib/server.mjs';

const VECTORS = process.env.NEFFOS_VECTORS || path.join(ROOT, 'spec', 'vectors', 'neffos-protocol-vectors.txt');

// { id: [{ dir: 'C->S' | 'S->C', frame }] } from lines like `G02 [live] C->S "..."` and their
// continuation lines `           S->C "..."`.
function loadVectors() {
  const out = {};
  let id = null;
  for (const line of readFileSync(VECTORS, 'utf8').split('\n')) {
    const head = /^([A-Z]\d\d) /.exec(line);
    if (head) id = head[1];
    else if (!/^\s/.test(line)) id = null;
    if (!id) continue;
    const m = /(C->S|S->C)(?: TEXT| BIN)? "((?:[^"\\]|\\.)*)"/.exec(line);
    if (!m) continue;
    const frame = JSON.parse(`"${m[2]}"`);
    (out[id] ||= []).push({ dir: m[1], frame });
  }
  return out;
}

const V = loadVectors();
const frame = (id, i = 0) => {
  assert.ok(V[id] && V[id][i], `vector ${id}[${i}] exists`);
  return V[id][i].frame;
};
// "$5;default;;ask;0;0;ping" -> a matcher that takes any "$<digits>" token; returns the token.
function matchAnyToken(recorded, actual) {
  const rest = recorded.replace(/^\$[0-9]+/, '');
  const m = /^(\$[0-9]+)(.*)$/s.exec(actual);
  assert.ok(m, `a client ask token in ${JSON.stringify(actual)}`);
  assert.equal(m[2], rest, `frame (token aside) as recorded in the vectors`);
  return m[1];
}

test('the Lua client sends and understands the recorded frames', { timeout: 60_000 }, async () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  const url = `ws://127.0.0.1:${wss.address().port}/echo`;
  const seen = [];
  const serverDone = new Promise((resolve, reject) => {
    wss.on('connection', (ws) => {
      const inbox = [];
      let waiter = null;
      ws.on('message', (data, isBinary) => {
        const text = data.toString('latin1');
        seen.push(text);
        if (waiter) { const w = waiter; waiter = null; w(text); } else inbox.push(text);
      });
      const next = () => withTimeout(new Promise((r) => { if (inbox.length) r(inbox.shift()); else waiter = r; }),
        10_000, `the client's next frame (seen so far: ${JSON.stringify(seen)})`);
      const send = (s) => ws.send(Buffer.from(s, 'latin1'), { binary: false });
      const reply = (template, token) => send(template.replace(/^\$[0-9]+/, token));
      (async () => {
        assert.equal(await next(), frame('A01'));                                    // "M"
        send(frame('A02'));                                                          // "An1-conn1"
        let tok = matchAnyToken(frame('D01', 0), await next());                      // connect default
        reply(frame('D01', 1), tok);
        assert.equal(await next(), frame('G01', 0));                                 // emit chat
        send(frame('G01', 1));
        tok = matchAnyToken(frame('G02', 0), await next()); reply(frame('G02', 1), tok);
        tok = matchAnyToken(frame('G03', 0), await next()); reply(frame('G03', 1), tok);
        tok = matchAnyToken(frame('F01', 0), await next()); reply(frame('F01', 1), tok);
        assert.equal(await next(), frame('F05', 0));                                 // emit to room
        tok = matchAnyToken(frame('F06', 0), await next()); reply(frame('F06', 1), tok);
        assert.equal(await next(), ';default;;go;0;0;');                             // the spec's cue
        for (const [id, answer] of [['H01', 1], ['H02', 1], ['F09', 1], ['F11', 1], ['D09', 1], ['D10', 1], ['E04', 1]]) {
          send(frame(id, 0));
          let want = frame(id, answer);
          assert.equal(await next(), want, `the client's answer to ${id}`);
        }
        send(';forced;;done;0;0;');
        resolve();
      })().catch(reject);
    });
  });
  const proc = spawn(BIN, ['test', path.join(ROOT, 'examples', 'echo'), path.join(ROOT, 'spec', 'author', 'lua', 'vectors_spec.lua')], {
    cwd: ROOT, env: { ...process.env, VECTORS_URL: url }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((r) => proc.once('exit', (code) => r(code)));
  try {
    await withTimeout(serverDone, 30_000, `the replay (client output: ${out})`);
    const code = await withTimeout(exited, 30_000, 'neffos test to exit');
    assert.equal(code, 0, `neffos test passed:\n${out}`);
  } finally {
    proc.kill('SIGKILL');
    await new Promise((r) => wss.close(r));
  }
});
