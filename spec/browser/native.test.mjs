// examples/native-messages in headless Chromium: the page talks to /endpoint with the browser's
// plain WebSocket (no neffos.js, no handshake). "ping" gets "pong"; any other text comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useExampleInBrowser, openPage, artifact, withTimeout } from '../examples/lib/example.mjs';

const WAIT = 10_000;
const h = useExampleInBrowser('native-messages');

test('the page: ping -> pong, other text echoed, also text that looks like a neffos message', { timeout: 60_000 }, async () => {
  const { ctx, page, errors } = await openPage(h.browser, h.ex.httpUrl('/'), { width: 600, height: 420 }, WAIT);
  await page.waitForFunction(() => document.getElementById('status').textContent === 'connected', null, { timeout: WAIT });

  const lines = () => page.$$eval('#messages li', (lis) => lis.map((li) => li.textContent));
  async function send(text, how, answer) {
    const n = (await lines()).length;
    await page.fill('#text', text);
    if (how === 'enter') await page.press('#text', 'Enter'); else await page.click('#send');
    await withTimeout(page.waitForFunction((k) => document.querySelectorAll('#messages li').length >= k, n + 2,
      { timeout: WAIT }), WAIT + 1000, `the answer to ${text}`)
      .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await lines())}\n${h.ex.logs()}`); });
    assert.deepEqual((await lines()).slice(n), [`me: ${text}`, `server: ${answer}`]);
  }

  // "M" first: a native-only server has no handshake, so even "M" is just a message.
  await send('M', 'enter', 'M');
  await send('ping', 'enter', 'pong');
  await send('hello there', 'button', 'hello there');
  await send('a;b;c;d;e;f;g', 'enter', 'a;b;c;d;e;f;g');
  await send('ping', 'button', 'pong');

  assert.equal(await page.textContent('#status'), 'connected');
  assert.deepEqual(errors, []);
  assert.match(h.ex.logs(), /got: ping/);
  await page.screenshot({ path: artifact('native.png') });
  await ctx.close();
});
