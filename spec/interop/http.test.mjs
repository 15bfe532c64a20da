// The HTTP side of the endpoint (docs/protocol.md §3.1, §3.2, §13.6, §17.1): HEAD probe, 404, 405, headers in the query.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
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

// ---- header fields as clients and proxies send them (RFC 9110 5.3, 5.6.1; RFC 9112 3.2; RFC 6455 4.2.1) ----

/** Sends a raw request; resolves with the status and headers of the answer's head, then hangs up. */
function answerHead(port, request, ms = 3000) {
  return withTimeout(new Promise((resolve, reject) => {
    let buf = '';
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(request));
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [line, ...lines] = buf.slice(0, end).split('\r\n');
      const headers = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      s.destroy();
      resolve({ status: Number(line.split(' ')[1]), headers, body: buf.slice(end + 4) });
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed without an answer head: ${JSON.stringify(buf)}`)));
  }), ms, `answer to ${JSON.stringify(request.split('\r\n')[0])}`);
}

const KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
const VER = 'Sec-WebSocket-Version: 13\r\n';
const upgradeReq = ({ target = '/echo', host = 'Host: 127.0.0.1\r\n', upc = 'Upgrade: websocket\r\nConnection: Upgrade\r\n',
  key = KEY, ver = VER, extra = '' } = {}) => `GET ${target} HTTP/1.1\r\n${host}${upc}${key}${ver}${extra}\r\n`;

test('Connection and Upgrade over several header lines are one list each (RFC 9110 5.3)', T, async () => {
  const port = h.server.port;
  for (const upc of [
    'Connection: keep-alive\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n',
    'Upgrade: h2c\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n',
    'Connection: keep-alive\r\nUpgrade: websocket\r\nconnection: , upgrade ,\r\n',
  ]) {
    const r = await answerHead(port, upgradeReq({ upc }));
    assert.equal(r.status, 101, JSON.stringify(upc));
  }
});

test('the absolute-form request target is accepted (RFC 9112 3.2.2), for the upgrade and the rest', T, async () => {
  const port = h.server.port;
  const abs = `http://127.0.0.1:${port}`;
  assert.equal((await answerHead(port, upgradeReq({ target: `${abs}/echo` }))).status, 101);
  assert.equal((await answerHead(port, `HEAD ${abs}/echo HTTP/1.1\r\nHost: x\r\n\r\n`)).status, 302);
  assert.equal((await answerHead(port, `GET ${abs}/health HTTP/1.1\r\nHost: x\r\n\r\n`)).status, 200);
  assert.equal((await answerHead(port, `GET ${abs}/nope?x=1 HTTP/1.1\r\nHost: x\r\n\r\n`)).status, 404);
  assert.equal((await answerHead(port, 'GET http:///echo HTTP/1.1\r\nHost: x\r\n\r\n')).status, 400, 'empty authority');
});

test('subprotocols: white space around each token trimmed, lines joined, the first selected', T, async () => {
  const port = h.server.port;
  const cases = [
    ['Sec-WebSocket-Protocol: \tchat\t\r\n', 'chat'],
    ['Sec-WebSocket-Protocol:  chat , superchat\r\n', 'chat'],
    ['Sec-WebSocket-Protocol: ,\r\nSec-WebSocket-Protocol: v2,v1\r\n', 'v2'],
  ];
  for (const [extra, want] of cases) {
    const r = await answerHead(port, upgradeReq({ extra }));
    assert.equal(r.status, 101, JSON.stringify(extra));
    assert.equal(r.headers['sec-websocket-protocol'], want, JSON.stringify(extra));
  }
  assert.equal((await answerHead(port, upgradeReq({ extra: 'Sec-WebSocket-Protocol: a b\r\n' }))).status, 400, 'not a token');
});

test('refused with 400: a key that is not base64 of 16 bytes, and fields that must come once', T, async () => {
  const port = h.server.port;
  const cases = {
    'key not base64': { key: 'Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n' },
    'key of 15 bytes': { key: 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\n' },
    'key of 24 letters': { key: 'Sec-WebSocket-Key: aaaaaaaaaaaaaaaaaaaaaaaa\r\n' },
    'key twice': { extra: KEY },
    'version twice': { extra: VER },
    'version twice, other value': { extra: 'Sec-WebSocket-Version: 8\r\n' },
    'Host twice': { extra: 'Host: 127.0.0.1\r\n' },
    'no Host': { host: '' },
    'Origin twice': { extra: 'Origin: http://a.example\r\nOrigin: http://b.example\r\n' },
  };
  for (const [what, parts] of Object.entries(cases)) {
    const r = await answerHead(port, upgradeReq(parts));
    assert.equal(r.status, 400, what);
  }
  const v8 = await answerHead(port, upgradeReq({ ver: 'Sec-WebSocket-Version: 8\r\n' }));
  assert.equal(v8.status, 426);
  assert.equal(v8.headers['sec-websocket-version'], '13');
});
