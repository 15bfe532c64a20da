// examples/chat over TLS in headless Chromium (issue 16 point 4): the page is loaded from
// https:// (static files over TLS) and neffos.js in the page dials its endpoint "/echo", which it
// turns into wss:// because the page is https (what a browser on an HTTPS page must do). The
// certificate is from a test CA made with `openssl` (spec/interop/lib/tls.mjs), which Chromium
// does not know: the browser context ignores certificate errors; the server is checked against
// the CA by Node's https below.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { startExample, launchChromium, withTimeout } from '../examples/lib/example.mjs';
import { makeTestCA } from '../interop/lib/tls.mjs';

const WAIT = 10_000;
let ca, ex, browser;

before(async () => {
  ca = makeTestCA();
  const { cert, key } = ca.issue('localhost');
  ex = await startExample('chat', 10_000, { args: ['--tls-cert', cert, '--tls-key', key], tls: true });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await ex?.stop();
  ca?.cleanup();
});

async function openPage(errors, sockets) {
  const ctx = await browser.newContext({ viewport: { width: 700, height: 600 }, ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`); });
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(ex.httpUrl('/'));
  return page;
}

const lastItem = (page, text) => page.waitForFunction((t) => [...document.querySelectorAll('#messages li')]
  .some((li) => li.lastChild.textContent === t), text, { timeout: WAIT });

async function join(page, user, room) {
  await page.fill('#username', user);
  await page.fill('#room', room);
  await page.click('#join');
  await lastItem(page, `you joined ${room} as ${user}`);
}

test('the chat page over https:// chats over wss://', { timeout: 60_000 }, async () => {
  // The server's certificate is the test CA's, for 127.0.0.1.
  const health = await withTimeout(new Promise((resolve, reject) => {
    https.get(ex.httpUrl('/health'), { ca: ca.ca }, (res) => resolve(res.statusCode)).on('error', reject);
  }), 5000, 'GET /health');
  assert.equal(health, 200);

  const errors = [], sockets = [];
  const alice = await openPage(errors, sockets);
  const bob = await openPage(errors, sockets);
  assert.match(alice.url(), /^https:\/\/127\.0\.0\.1:\d+\/$/);
  await join(alice, 'alice', 'blue');
  await join(bob, 'bob', 'blue');
  await lastItem(alice, 'bob joined the room');
  await alice.fill('#text', 'hello over TLS');
  await alice.press('#text', 'Enter');
  await lastItem(bob, 'hello over TLS');
  assert.ok(sockets.length >= 2 && sockets.every((u) => u.startsWith(`${ex.url('/echo')}?`)), `the pages' WebSockets: ${sockets}`);
  assert.match(sockets[0], /^wss:\/\//);
  assert.deepEqual(errors, [], 'no errors in the pages');
  await withTimeout(Promise.all([alice, bob].map((p) => p.context().close())), WAIT, 'closing contexts');
});
