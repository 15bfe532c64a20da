// permessage-deflate in headless Chromium (issue 16 point 9): Chromium offers it on every
// WebSocket; the page loads the neffos.js browser build and talks to the server with it. The
// agreed extension, asks with large JSON bodies both ways, and a broadcast between two pages;
// the server's counters show the messages really went compressed in both directions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, launchChromium, withTimeout } from '../examples/lib/example.mjs';
import { appPath, serveFor, metricOf } from '../interop/lib/server.mjs';

const WAIT = 10_000;
const NEFFOS_JS = path.join(ROOT, 'node_modules/neffos.js/dist/neffos.min.js');

/** A page of the server's own origin with neffos.js loaded and connected to namespace v1. */
async function openClient(browser, s) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(`http://127.0.0.1:${s.port}/health`);
  await page.addScriptTag({ path: NEFFOS_JS, type: 'module' });   // an ES module that also sets window.neffos
  await page.waitForFunction(() => typeof window.neffos?.dial === 'function');
  const extensions = await withTimeout(page.evaluate(async (url) => {
    window.got = [];
    window.conn = await neffos.dial(url, { v1: { chat: (ns, msg) => { window.got.push(msg.Body); } } });
    window.ns = await window.conn.connect('v1');
    return window.conn.conn.extensions;
  }, s.url()), WAIT, 'neffos.dial in the page');
  return { ctx, page, extensions };
}

test('Chromium and neffos.js: permessage-deflate agreed, asks and a broadcast compressed both ways', { timeout: 90_000 }, async (t) => {
  const s = await serveFor(t, appPath('deflate.lua'));
  const browser = await launchChromium();
  t.after(() => browser.close());
  const a = await openClient(browser, s);
  const b = await openClient(browser, s);
  assert.equal(a.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');

  const body = JSON.stringify({ rows: Array.from({ length: 300 }, (_, i) => ({ id: i, text: `row ${i}` })) });
  const echoed = await a.page.evaluate(async (x) => (await window.ns.ask('echo', x)).Body, body);
  assert.equal(echoed, body);
  // shout returns the receivers on the sender's worker (README, "Workers"): b, with one worker
  const worker = (c) => c.page.evaluate(async () => (await window.ns.ask('worker', '')).Body);
  const local = (await worker(a)) === (await worker(b)) ? '1' : '0';
  const count = await a.page.evaluate(async (x) => (await window.ns.ask('shout', x)).Body, body);
  assert.equal(count, local);
  await withTimeout(b.page.waitForFunction((n) => window.got.length === 1 && window.got[0].length === n, body.length),
    WAIT, 'the broadcast in the second page');
  assert.equal(await b.page.evaluate(() => window.got[0]), body);

  // Chromium compressed what it sent (its asks), the server what it sent back (the echo and the chat).
  assert.ok(await metricOf(s, 'neffos_deflate_messages_total{dir="in"}') >= 2);
  assert.ok(await metricOf(s, 'neffos_deflate_messages_total{dir="out"}') >= 2);
  const plainOut = await metricOf(s, 'neffos_deflate_bytes_total{dir="out",form="plain"}');
  const zOut = await metricOf(s, 'neffos_deflate_bytes_total{dir="out",form="compressed"}');
  t.diagnostic(`server compressed ${plainOut} bytes into ${zOut}`);
  assert.ok(zOut < plainOut / 3);
  await a.ctx.close();
  await b.ctx.close();
});
