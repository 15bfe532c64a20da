// examples/auth's page in headless Chromium: the token goes out as the X-Websocket-Header-
// query parameter (neffos.js browser path); refusals of the dial and of a room show their text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useExampleInBrowser, openPage, artifact, withTimeout } from '../examples/lib/example.mjs';

const WAIT = 10_000;
const h = useExampleInBrowser('auth');

test('wrong token refused, bob-token connects, dev refused, lobby joined', { timeout: 60_000 }, async () => {
  const { ctx, page, errors } = await openPage(h.browser, h.ex.httpUrl('/'), { width: 640, height: 460 }, WAIT);

  const lines = () => page.$$eval('#log li', (lis) => lis.map((li) => li.textContent));
  async function expectLine(text) {
    await withTimeout(page.waitForFunction((s) => [...document.querySelectorAll('#log li')].some((li) => li.textContent === s),
      text, { timeout: WAIT }), WAIT + 1000, text)
      .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await lines())}\n${h.ex.logs()}`); });
  }

  await page.fill('#token', 'not-a-token');
  await page.click('#connect');
  await expectLine('connection refused: unauthorized: a valid token is required (Authorization: Bearer <token>)');

  await page.fill('#token', 'bob-token');
  await page.press('#token', 'Enter');
  await expectLine('connected as bob; allowed rooms: lobby');

  await page.fill('#room', 'dev');
  await page.click('#join');
  await expectLine('join refused: forbidden: bob may not join room "dev"');
  await page.fill('#room', 'lobby');
  await page.click('#join');
  await expectLine('joined lobby');
  assert.equal(await page.textContent('#status'), 'connected as bob, in lobby');

  assert.deepEqual(errors, []);
  await page.screenshot({ path: artifact('auth.png') });
  await ctx.close();
});
