// examples/chat/client.mjs driven through stdin/stdout: two terminal users (one given its name and
// room as arguments, one answering the prompts) and a neffos.js client, against examples/chat/run.sh.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { dial, withTimeout } from '../interop/lib/server.mjs';
import { ROOT, startExample, sleep, eventually as until } from './lib/example.mjs';

const WAIT = 10_000;
let ex;
before(async () => { ex = await startExample('chat'); });
after(async () => { await ex?.stop(); });

/** The terminal client as a child process; killed when the test ends. */
function terminal(t, args) {
  const proc = spawn(process.execPath, [path.join(ROOT, 'examples/chat/client.mjs'), ...args], {
    cwd: ROOT, env: { ...process.env, PORT: String(ex.port) }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const term = { out: '', exit: null };
  proc.stdout.setEncoding('utf8').on('data', (d) => { term.out += d; });
  proc.stderr.setEncoding('utf8').on('data', (d) => { term.out += d; });
  term.exited = new Promise((resolve) => proc.once('exit', (code) => resolve(term.exit = code)));
  term.type = (line) => proc.stdin.write(`${line}\n`);
  term.eof = () => proc.stdin.end();
  /** Waits for an output line equal to `line` (or, for a prompt, output ending with it). */
  term.see = (line, prompt = false) => until(() => (prompt ? term.out.endsWith(line) : term.out.split('\n').includes(line)),
    `${args[0] ?? 'prompted client'} prints ${JSON.stringify(line)}; output so far:\n${term.out}\n--- server ---\n${ex.logs()}`, WAIT);
  term.lines = () => term.out.split('\n');
  t.after(() => { if (term.exit === null) proc.kill('SIGKILL'); });
  return term;
}

test('terminal clients chat with each other and with neffos.js; leave, rejoin elsewhere, EOF', { timeout: 60_000 }, async (t) => {
  const alice = terminal(t, ['alice', 'room1']);
  await alice.see('* you joined room1 as alice; type leave to leave, Ctrl-D to quit');

  // bob answers the prompts instead of passing arguments.
  const bob = terminal(t, []);
  await bob.see('name: ', true);
  bob.type('bob');
  await bob.see('room: ', true);
  bob.type('room1');
  await bob.see('* you joined room1 as bob; type leave to leave, Ctrl-D to quit');
  await alice.see('* bob joined the room');

  // nina uses neffos.js directly and records what reaches her.
  const nina = { chat: [], notify: [] };
  const conn = await dial(t, ex.url(), {
    default: {
      chat: (c, msg) => { nina.chat.push(msg.unmarshal()); },
      notify: (c, msg) => { nina.notify.push(msg.Body); },
    },
  }, { headers: { 'X-Username': 'nina' }, allowSynchronousEvents: false });
  const ns = await withTimeout(conn.connect('default'), 5000, 'nina connects');
  const room = await withTimeout(ns.joinRoom('room1'), 5000, 'nina joins room1');
  await alice.see('* nina joined the room');
  await bob.see('* nina joined the room');

  alice.type('hello everyone');
  await bob.see('alice: hello everyone');
  await until(() => nina.chat.some((m) => m.from === 'alice' && m.text === 'hello everyone'), 'nina gets alice\'s line', WAIT);

  assert.ok(room.emit('chat', JSON.stringify({ from: 'nina', text: 'hi from the browser side' })));
  await alice.see('nina: hi from the browser side');
  await bob.see('nina: hi from the browser side');

  // bob leaves, then names another room to join.
  bob.type('leave');
  await bob.see('* you left room1; type a room to join');
  await alice.see('* bob left the room');
  await until(() => nina.notify.includes('bob left the room'), 'nina is told bob left', WAIT);
  bob.type('room2');
  await bob.see('* you joined room2 as bob; type leave to leave, Ctrl-D to quit');

  alice.type('room1 only');
  await until(() => nina.chat.some((m) => m.text === 'room1 only'), 'nina gets room1 talk', WAIT);
  await sleep(300);
  assert.ok(!bob.out.includes('room1 only'), `bob (room2) must not get room1's talk:\n${bob.out}`);
  assert.ok(!alice.lines().includes('alice: hello everyone'), 'the sender does not get her own line back');

  // EOF closes alice's client cleanly; the room hears that she left.
  alice.eof();
  assert.equal(await withTimeout(alice.exited, WAIT, 'alice exits on EOF'), 0, alice.out);
  await until(() => nina.notify.includes('alice left the room'), 'nina is told alice left', WAIT);
  bob.eof();
  assert.equal(await withTimeout(bob.exited, WAIT, 'bob exits on EOF'), 0, bob.out);
});

test('the terminal client reports a server that is not there', { timeout: 30_000 }, async (t) => {
  const lost = terminal(t, ['x', 'y', 'ws://127.0.0.1:1/echo']);
  assert.equal(await withTimeout(lost.exited, WAIT, 'the client gives up'), 1);
  assert.match(lost.out, /cannot connect to ws:\/\/127\.0\.0\.1:1\/echo/);
});
