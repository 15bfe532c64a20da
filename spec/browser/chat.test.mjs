// examples/chat in headless Chromium: the page as a user sees it, served by examples/chat/run.sh
// (so the static dir and the neffos.js browser build from npm are covered too).
// Three browser contexts: alice and bob in room "blue", carol in room "green".
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startExample, launchChromium, artifact, sleep, withTimeout } from '../examples/lib/example.mjs';

const WAIT = 10_000;
let ex, browser;
const pageErrors = [];

before(async () => {
  ex = await startExample('chat');
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await ex?.stop();
});

/** A fresh context (empty profile) with the chat page open. */
async function openPage() {
  const ctx = await browser.newContext({ viewport: { width: 700, height: 600 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  page.on('response', (r) => { if (r.status() >= 400) pageErrors.push(`${r.status()} ${r.url()}`); });
  await page.goto(ex.httpUrl('/'));
  return page;
}

/** The message list as [{kind, from, text}]. */
function items(page) {
  return page.$$eval('#messages li', (lis) => lis.map((li) => ({
    kind: li.className, from: li.querySelector('.from')?.textContent ?? null, text: li.lastChild.textContent,
  })));
}

/** Waits until the list has an item matching `want` (a subset of {kind, from, text}). */
async function waitItem(page, want, what) {
  await withTimeout(page.waitForFunction((w) => [...document.querySelectorAll('#messages li')].some((li) =>
    (w.kind === undefined || li.className === w.kind) &&
    (w.from === undefined || li.querySelector('.from')?.textContent === w.from) &&
    (w.text === undefined || li.lastChild.textContent === w.text)), want, { timeout: WAIT }), WAIT + 1000, what)
    .catch(async (e) => { throw new Error(`${e.message}\nlist: ${JSON.stringify(await items(page))}\n${ex.logs()}`); });
}

const has = async (page, text) => (await items(page)).some((i) => i.text === text);

async function join(page, user, room) {
  await page.fill('#username', user);
  await page.fill('#room', room);
  await page.click('#join');
  await waitItem(page, { kind: 'notice', text: `you joined ${room} as ${user}` }, `${user} joins ${room}`);
  assert.equal(await page.textContent('#status'), `${user} in ${room}`);
}

test('the page loads the neffos.js browser build from the npm package', async () => {
  const res = await fetch(ex.httpUrl('/neffos.min.js'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /javascript/);
  const npm = readFileSync(path.join(ROOT, 'node_modules/neffos.js/dist/neffos.min.js'));
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(npm), 'served file differs from the npm build');

  const page = await openPage();
  // The module sets window.neffos as a side effect; chat.js imports it.
  await page.waitForFunction(() => typeof window.neffos?.dial === 'function', null, { timeout: WAIT });
  await page.context().close();
});

test('two users in one room chat; a third room hears nothing; leave notifies the others', { timeout: 90_000 }, async () => {
  const alice = await openPage();
  const bob = await openPage();
  const carol = await openPage();

  await join(alice, 'alice', 'blue');
  await join(bob, 'bob', 'blue');
  await waitItem(alice, { kind: 'notice', text: 'bob joined the room' }, 'alice hears bob joining');
  await join(carol, 'carol', 'green');

  // alice sends with Enter; bob sees it with alice's name, alice sees her own line.
  await alice.fill('#text', 'hello blue room');
  await alice.press('#text', 'Enter');
  await waitItem(alice, { kind: 'chat mine', from: 'me', text: 'hello blue room' }, 'alice sees her line');
  await waitItem(bob, { kind: 'chat', from: 'alice', text: 'hello blue room' }, 'bob gets alice\'s message');

  // bob answers with the button; carol, in green, speaks too.
  await bob.fill('#text', 'hi alice');
  await bob.click('#send');
  await waitItem(alice, { kind: 'chat', from: 'bob', text: 'hi alice' }, 'alice gets bob\'s answer');
  await carol.fill('#text', 'anyone in green?');
  await carol.press('#text', 'Enter');

  // bob leaves: alice is told, carol is not.
  await bob.fill('#text', 'leave');
  await bob.press('#text', 'Enter');
  await waitItem(bob, { kind: 'notice', text: 'you left blue' }, 'bob leaves');
  await waitItem(alice, { kind: 'notice', text: 'bob left the room' }, 'alice hears bob leave');
  assert.equal(await bob.isEnabled('#text'), false, 'no sending outside a room');
  assert.equal(await bob.isEnabled('#join'), true, 'bob may join another room');

  // After leaving, bob no longer gets blue's messages.
  await alice.fill('#text', 'bob is gone');
  await alice.press('#text', 'Enter');
  await waitItem(alice, { kind: 'chat mine', text: 'bob is gone' }, 'alice sends again');

  await sleep(500); // anything misrouted would have arrived by now (loopback, same server)
  for (const t of ['hello blue room', 'hi alice', 'bob joined the room', 'bob left the room']) {
    assert.ok(!await has(carol, t), `carol (green) must not see ${JSON.stringify(t)}: ${JSON.stringify(await items(carol))}`);
  }
  assert.ok(!await has(alice, 'anyone in green?'), 'alice must not see green\'s message');
  assert.ok(!await has(bob, 'anyone in green?'), 'bob must not see green\'s message');
  assert.ok(!await has(bob, 'bob is gone'), 'bob must not get blue\'s messages after leaving');
  assert.equal((await items(bob)).filter((i) => i.text === 'hello blue room').length, 1, 'delivered once');
  assert.ok(!(await items(alice)).some((i) => i.kind === 'chat' && i.text === 'hello blue room'),
    'the sender does not get her own message back');

  // The namespace connects were logged by the app.
  for (const u of ['alice', 'bob', 'carol']) assert.match(ex.logs(), new RegExp(`\\[${u}\\] connected to namespace \\[default\\]`));

  await alice.screenshot({ path: artifact('chat.png') });
  await bob.screenshot({ path: artifact('chat-bob.png') });
  assert.deepEqual(pageErrors, [], 'no errors in the pages');

  // Closing a tab while in a room counts as leaving: a second green member comes and goes.
  const dave = await openPage();
  await join(dave, 'dave', 'green');
  await waitItem(carol, { kind: 'notice', text: 'dave joined the room' }, 'carol hears dave');
  await dave.context().close();
  await waitItem(carol, { kind: 'notice', text: 'dave left the room' }, 'carol hears dave\'s tab close');
  await withTimeout(Promise.all([alice, bob, carol].map((p) => p.context().close())), WAIT, 'closing contexts');
});

test('when the server stops, the page says so and stops sending', { timeout: 30_000 }, async () => {
  const page = await openPage();
  await join(page, 'erin', 'red');
  await ex.stop(); // SIGTERM: the server closes the connections (1001) and exits
  await waitItem(page, { kind: 'error', text: 'disconnected from the server; reload the page to reconnect' }, 'the page notices');
  assert.equal(await page.isEnabled('#text'), false);
  assert.equal(await page.textContent('#status'), 'not connected');
  await page.context().close();
});
