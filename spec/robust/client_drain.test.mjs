// SIGTERM while handlers wait for the Lua client (bindings/lua_client.c): a dial whose handshake
// never comes, an ask its upstream does not answer in time. Such a wait is the app's own: the
// drain closes the server's connections, not the client's sockets, so nothing else ends it. At the
// grace period's end the handler is ended like a sleeping one (its <close> variables are closed),
// and nothing is left at exit: serveFor's stop() fails on any sanitizer report (LeakSanitizer on
// the ASan build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { ROOT, T, serveFor, rawIn, withTimeout, eventually } from '../interop/lib/server.mjs';

const APP = path.join(ROOT, 'spec', 'robust', 'apps', 'client_drain.lua');

/** A TCP listener that accepts and never answers: a dial to it waits for its upgrade forever. */
function silentUpstream(t) {
  const socks = [];
  const server = net.createServer((sock) => { sock.on('error', () => {}); socks.push(sock); });
  t.after(() => { for (const s of socks) s.destroy(); server.close(); });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

async function terminate(s) {
  s.stopping = true;
  s.proc.kill('SIGTERM');
  const exit = await withTimeout(s.exited, 30_000, 'the process to exit');
  assert.equal(exit.code, 0, s.logs());
  await s.stop();   // throws on a sanitizer report (LeakSanitizer runs at exit)
}

test('SIGTERM while a handler waits for a dial: the drain ends it, nothing leaks', T, async (t) => {
  const port = await silentUpstream(t);
  const s = await serveFor(t, APP, ['--grace-ms', '300']);
  const c = await rawIn(t, s, 'v1');
  c.sendText(`$1;v1;;dial_hang;0;0;ws://127.0.0.1:${port}/up`);
  await eventually(() => /dial_hang: dialing/.test(s.logs()), 'the dial to go out');
  await terminate(s);
  assert.match(s.logs(), /dial_hang: closed/);
});

test('SIGTERM while a handler waits for an ask of a dialled connection: the drain ends it, nothing leaks', T, async (t) => {
  const up = await serveFor(t, APP, ['--grace-ms', '100']);
  const s = await serveFor(t, APP, ['--grace-ms', '300']);
  const c = await rawIn(t, s, 'v1');
  c.sendText(`$1;v1;;ask_hang;0;0;${up.url()}`);
  await eventually(() => /ask_hang: asking/.test(s.logs()), 'the ask to go out');
  await terminate(s);
  assert.match(s.logs(), /ask_hang: closed/);
});

// bindings/lua_client.c, client_ask: the ask's record was allocated before the check that the
// calling code may wait, which raises where it may not (here a table.sort comparator): the record
// was lost on every such call (LeakSanitizer at exit). The check now comes first.
test('an ask of a dialled connection where code cannot wait raises and loses nothing', T, async (t) => {
  const up = await serveFor(t, APP, ['--grace-ms', '100']);
  const s = await serveFor(t, APP, ['--grace-ms', '300']);
  const c = await rawIn(t, s, 'v1');
  const reply = await c.ask(`$1;v1;;ask_unwaitable;0;0;${up.url()}|50`, 15_000);
  assert.match(reply, /^\$1;v1;;ask_unwaitable;0;0;.*ask cannot wait here \(inside a metamethod or a C call\)/);
  await terminate(s);
});
