// Reconnection across a restart: neffos.js with `reconnect` must come back to the next
// process on the same port while the old one still drains (README, Operations: Signals).
// neffos.js probes with HEAD and dials once the probe gets any HTTP answer; a dial that
// fails then is final. So a draining process must not answer at all: it closes its
// listener at drain start, the new process binds the port at once, and a probe in between
// is refused, which neffos.js retries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, RawClient, startServer, freePort, canConnect, withTimeout, eventually, dial } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'reconnect.lua');

/** A raw client in namespace chat whose `hold` handler waits for its answer to "release". */
async function holder(t, s) {
  const c = await RawClient.connect(t, s.url());
  assert.equal(await c.ask('$0;chat;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  c.sendText('$1;chat;;hold;0;0;');
  const ask = await c.nextText(5000, 'the release ask');
  const [token, ns, room, event] = ask.split(';');
  assert.equal(event, 'release', ask);
  return { c, release: () => c.sendText(`${token};${ns};${room};${event};0;0;ok`) };
}

test('SIGTERM, a new process on the same port: neffos.js reconnects, is back in its namespace and room', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const args = ['--no-watch', '--grace-ms', '30000', '--ask-timeout-ms', '30000'];
  const a = await startServer(APP, { args, port });
  let b = null;
  let latest = null;   // neffos.js makes a new Conn when it reconnects: the handlers see it
  t.after(async () => {
    // A neffos.js client left open would probe the stopped port for ever (and keep Node alive).
    if (latest && !latest.conn.isClosed()) latest.conn.close();
    await a.stop();
    if (b) await b.stop();
  });

  const seen = { connected: 0, joined: 0, news: [] };
  const conn = await dial(t, a.url(), {
    chat: {
      _OnNamespaceConnected: (ns) => { seen.connected++; latest = ns; },
      _OnRoomJoined: (ns, msg) => { if (msg.Room === 'r') seen.joined++; },
      news: (ns, msg) => { seen.news.push(msg.Body); },
    },
  }, { reconnect: 50 });
  const ns = await withTimeout(conn.connect('chat'), 5000, 'connect chat');
  await withTimeout(ns.joinRoom('r'), 5000, 'join r');
  assert.deepEqual([seen.connected, seen.joined], [1, 1]);

  const hold = await holder(t, a);   // keeps process a draining until released
  a.stopping = true;                  // its exit is the test's, not a crash
  a.proc.kill('SIGTERM');
  // The listener goes first: the port refuses while a still drains.
  await eventually(async () => !(await canConnect(port)), 'the draining process stops listening');
  assert.equal(a.exit, null, 'a is still draining (its handler waits)');

  b = await startServer(APP, { args: ['--no-watch'], port });
  await eventually(() => seen.connected === 2 && seen.joined === 2,
    `neffos.js back in chat and room r (connected ${seen.connected}, joined ${seen.joined})`, 20_000);
  // The server side agrees: a broadcast to room r on b reaches the reconnected client.
  const other = await RawClient.connect(t, b.url());
  assert.equal(await other.ask('$0;chat;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
  // say returns the receivers on the sender's worker (README, "Workers"): 1 with one worker
  const worker = async (c) => (await c.ask('$w;chat;;worker;0;0;')).split(';').pop();
  const local = (await worker(other)) === (await withTimeout(latest.ask('worker', ''), 5000, 'worker')).Body ? 1 : 0;
  assert.equal(await other.ask('$1;chat;;say;0;0;hello again'), `$1;chat;;say;0;0;${local}`);
  await eventually(() => seen.news.includes('hello again'), 'the broadcast reaches the reconnected client');
  assert.equal(a.exit, null, 'a drained the whole time');

  // The held handler finishes on a: its reply, then 1001, then a exits 0.
  hold.release();
  assert.equal(await hold.c.nextText(5000, 'the hold reply'), '$1;chat;;hold;0;0;released');
  assert.equal((await hold.c.waitClose(5000)).code, 1001);
  assert.equal((await withTimeout(a.exited, 10_000, 'a exits after its drain')).code, 0);
});
