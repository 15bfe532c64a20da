// The Lua client inside the server (neffos.dial, docs/lua-api.md "Client"), against this server:
// a bridge app (spec/author/apps/bridge.lua) whose handlers dial a second server process
// (spec/author/apps/upstream.lua). neffos.js clients drive the bridge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startServer, dial, withTimeout, eventually } from '../interop/lib/server.mjs';

const app = (name) => path.join(ROOT, 'spec', 'author', 'apps', name);

async function pair(t) {
  const up = await startServer(app('upstream.lua'), { args: ['--no-watch'] });
  t.after(() => up.stop());
  const bridge = await startServer(app('bridge.lua'), { args: ['--no-watch'], env: { UPSTREAM: up.url() } });
  t.after(() => bridge.stop());
  return { up, bridge };
}

async function connect(t, url, handlers = {}) {
  const conn = await dial(t, url, { v1: handlers });
  return withTimeout(conn.connect('v1'), 5000, 'connect v1');
}

test('a handler dials, asks and waits without blocking the server', { timeout: 60_000 }, async (t) => {
  const { up, bridge } = await pair(t);
  const a = await connect(t, bridge.url());
  let relayed = null;
  const relay = a.ask('relay', 'hold').then((m) => { relayed = m.Body; return m.Body; });
  // The bridge's relay handler now waits on its upstream ask (held until released) ...
  await eventually(() => up.logs().includes('reconnect_tries=0'), 'the bridge dialled upstream');
  // ... and the bridge still serves everybody else.
  const b = await connect(t, bridge.url());
  for (let i = 0; i < 5; i++) {
    const m = await withTimeout(b.ask('ping', ''), 5000, 'ping while relay waits');
    assert.equal(m.Body, 'pong');
  }
  assert.equal(relayed, null, 'the relay is still waiting upstream');
  const direct = await connect(t, up.url());
  direct.emit('release', '');
  assert.equal(await withTimeout(relay, 10_000, 'relay'), 'relayed held:x');
});

test('events from upstream run the bridge\'s client handlers; asks go both ways', { timeout: 60_000 }, async (t) => {
  const { up, bridge } = await pair(t);
  const news = [];
  const a = await connect(t, bridge.url(), { news: (_ns, msg) => { news.push(msg.Body); } });
  const sub = await withTimeout(a.ask('subscribe', ''), 5000, 'subscribe');
  assert.match(sub.Body, /^subscribed as /);
  await eventually(() => up.logs().includes('joined bridges'), 'the bridge joined its room upstream');

  const direct = await connect(t, up.url());
  direct.emit('shout', 'hello');
  await eventually(() => news.length > 0, 'news relayed by the bridge');
  assert.deepEqual(news, ['via bridge: hello']);

  // upstream asks the bridge's Lua client, whose handler waits before it answers.
  const back = await withTimeout(a.ask('ask_back', 'q1'), 10_000, 'ask_back');
  assert.equal(back.Body, 'B heard: bridge answers q1');

  // A client handler that raises: upstream gets the message as an error answer, the bridge's log
  // has it with file:line.
  await assert.rejects(withTimeout(a.ask('ask_back', 'boom'), 10_000, 'ask_back boom'), (e) => {
    assert.match(String(e?.message ?? e), /bridge handler boom/);
    return true;
  });
  await eventually(() => /bridge\.lua:\d+: bridge handler boom/.test(bridge.logs()), 'the error logged with file:line');
});

test('a timer dials and asks upstream', { timeout: 60_000 }, async (t) => {
  const { bridge } = await pair(t);
  const a = await connect(t, bridge.url());
  assert.equal((await withTimeout(a.ask('via_timer', 'tick'), 5000, 'via_timer')).Body, 'scheduled');
  await eventually(async () => (await a.ask('timer_result', '')).Body === 'B:tick', 'the timer\'s answer from upstream');
});

test('the bridge\'s client reconnects like neffos.js, namespaces and rooms again', { timeout: 60_000 }, async (t) => {
  const { up, bridge } = await pair(t);
  const a = await connect(t, bridge.url());
  await withTimeout(a.ask('subscribe', ''), 5000, 'subscribe');
  const port = up.port;
  await up.stop();
  await eventually(async () => (await a.ask('upstream_state', '')).Body.startsWith('closed=true'), 'the bridge saw the close');
  const up2 = await startServer(app('upstream.lua'), { args: ['--no-watch'], port });
  t.after(() => up2.stop());
  await eventually(() => /reconnect_tries=[1-9]/.test(up2.logs()), 'a dial with X-Websocket-Reconnect', 10_000);
  await eventually(async () => (await a.ask('upstream_state', '')).Body === 'closed=false reconnected=true tries=' +
    /reconnect_tries=(\d+)/.exec(up2.logs())[1] + ' rooms=bridges', 'namespace and room back', 10_000);
  assert.ok(up2.logs().includes('joined bridges'));
});
