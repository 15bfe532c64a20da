// The HTTP side of the endpoint (docs/protocol.md §3.1, §3.2, §13.6, §17.1): HEAD probe, 404, 405, headers in the query.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { T, appPath, useServer, dial, RawClient, rawHttp, withTimeout } from './lib/server.mjs';

const h = useServer(appPath('events.lua'));
const req = (method, path, extra = '') =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${h.server.port}\r\n${extra}Connection: close\r\n\r\n`;

test('HEAD on the endpoint: 302 and no body (the neffos.js reconnect probe, 3.1, 13.6)', T, async () => {
  const r = await rawHttp(h.server.port, req('HEAD', '/echo'));
  assert.equal(r.status, 302, r.statusLine);
  assert.equal(r.body, '', 'nothing after the head');
  assert.ok(!('location' in r.headers), 'no Location header');
  // What neffos.js itself does: fetch(url, {method: "HEAD"}) must get some HTTP response.
  const res = await withTimeout(fetch(h.server.httpUrl(), { method: 'HEAD', redirect: 'manual' }), 3000, 'fetch HEAD');
  assert.equal(res.status, 302);
});

test('other paths get 404, for plain requests and WebSocket upgrades alike', T, async (t) => {
  const r = await rawHttp(h.server.port, req('GET', '/nope'));
  assert.equal(r.status, 404, r.statusLine);
  const head = await rawHttp(h.server.port, req('HEAD', '/echo/sub'));
  assert.equal(head.status, 404, head.statusLine);
  await assert.rejects(RawClient.open(t, h.server.url('/nope')), (e) => e.statusCode === 404);
});

test('POST on the endpoint: 405 with Allow: GET (3.1, 17.1.1)', T, async () => {
  const r = await rawHttp(h.server.port, req('POST', '/echo', 'Content-Length: 0\r\n'));
  assert.equal(r.status, 405, r.statusLine);
  assert.equal(r.headers.allow, 'GET');
});

test('the server still upgrades after those requests', T, async (t) => {
  const c = await RawClient.connect(t, h.server.url());
  assert.equal(await c.ask('$0;default;;_OnNamespaceConnect;0;0;'), '$0;;;;;;');
});

test('X-Websocket-Header- query parameters become request headers (3.2, A05)', T, async (t) => {
  // neffos.js in Node leaves the URL alone, so the query reaches the server as written.
  const url = h.server.url('/echo?X-Websocket-Header-X-Custom=hello%20world' +
    '&x-websocket-header-authorization=Bearer%20t0k&plain=1');
  const conn = await dial(t, url, { default: {} });
  const ns = await withTimeout(conn.connect('default'), 5000, 'connect');
  const header = async (name) => (await withTimeout(ns.ask('header', name), 5000, `header ${name}`)).Body;
  assert.equal(await header('X-Custom'), 'hello world');
  assert.equal(await header('authorization'), 'Bearer t0k', 'prefix matched case-insensitively');
  await assert.rejects(withTimeout(ns.ask('header', 'plain'), 5000, 'header plain'),
    (e) => e.message === 'no header plain', 'a parameter without the prefix is not a header');
});

test('options.headers from neffos.js in Node arrive as real headers (3.2, 13.4)', T, async (t) => {
  const conn = await dial(t, h.server.url(), { default: {} }, { headers: { 'X-Custom': 'real header' } });
  const ns = await withTimeout(conn.connect('default'), 5000, 'connect');
  assert.equal((await withTimeout(ns.ask('header', 'x-custom'), 5000, 'header')).Body, 'real header');
});
