// Static files over real HTTP (issue 5): --static DIR beside the WebSocket endpoint, content types,
// HEAD, 404, and traversal attempts (.., encoded forms, symlinks out of the root) that must serve
// nothing from outside the root. spec/c/test_static.c covers the module; this covers the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { T, appPath, startServer, rawHttp } from './lib/server.mjs';

const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT';
let dir, root, srv;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'neffos-static-'));
  root = path.join(dir, 'public');
  fs.mkdirSync(path.join(root, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'index.html'), '<h1>home</h1>');
  fs.writeFileSync(path.join(root, 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(root, 'sub', 'data.json'), '{"a":1}');
  fs.writeFileSync(path.join(dir, 'secret.txt'), SECRET);
  fs.symlinkSync(path.join(dir, 'secret.txt'), path.join(root, 'link-out.txt'));
  fs.symlinkSync(dir, path.join(root, 'dir-out'));
  srv = await startServer(appPath('events.lua'), { args: ['--static', root] });
});
after(async () => {
  if (srv) await srv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const get = (p, method = 'GET') =>
  rawHttp(srv.port, `${method} ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);

test('files are served with their content type; / is index.html; HEAD has no body', T, async () => {
  const home = await get('/');
  assert.equal(home.status, 200);
  assert.match(home.headers['content-type'], /^text\/html/);
  assert.equal(home.body, '<h1>home</h1>');
  const js = await get('/app.js');
  assert.match(js.headers['content-type'], /javascript/);
  const json = await get('/sub/data.json');
  assert.match(json.headers['content-type'], /^application\/json/);
  assert.equal(json.body, '{"a":1}');
  const head = await get('/app.js', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String('console.log(1)'.length));
  assert.equal(head.body, '');
});

test('missing files are 404; the endpoint, /health and /metrics keep their meaning', T, async () => {
  assert.equal((await get('/nope.html')).status, 404);
  assert.equal((await get('/echo', 'HEAD')).status, 302);
  assert.equal((await get('/health')).status, 200);
  assert.match((await get('/metrics')).body, /neffos_connections /);
});

test('traversal attempts are refused and never serve a byte from outside the root', T, async () => {
  const attempts = [
    '/../secret.txt', '/sub/../../secret.txt', '/%2e%2e/secret.txt', '/%2E%2E/secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt', '/sub/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/%00',
    '/app.js%00.html', '/link-out.txt', '/dir-out/secret.txt', '/./../secret.txt', '//../secret.txt',
  ];
  for (const p of attempts) {
    const r = await get(p);
    assert.ok(r.status === 400 || r.status === 404, `${p}: ${r.statusLine}`);
    assert.ok(!r.raw.includes(SECRET), `${p} leaked the file outside the root`);
  }
});

test('methods other than GET and HEAD are refused on static paths', T, async () => {
  const r = await rawHttp(srv.port, 'POST /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 405);
});
