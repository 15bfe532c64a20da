// Every metric the README documents (Operations, "Health and metrics") is in /metrics, every
// series in /metrics is documented, and each one moves when the thing it counts happens.
// The neffos_exchange_* series exist only with scale-out: spec/scaleout covers them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ROOT, T, appPath, startServer, RawClient, rawHttp, dial, withTimeout, eventually } from './lib/server.mjs';

const APP = appPath('metrics.lua');

/** Starts the metrics app with these flags; stops it when the test ends. */
async function serve(t, args = [], app = APP) {
  const s = await startServer(app, { args: ['--no-watch', ...args] });
  t.after(() => s.stop());
  return s;
}

/** /metrics as a Map of series ("name" or 'name{label="v"}') to numbers. */
async function scrape(s) {
  const r = await rawHttp(s.port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(r.status, 200);
  const m = new Map();
  for (const line of r.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** The change of every series between two scrapes (series missing in either: NaN). */
function delta(before, after) {
  const d = {};
  for (const [k, v] of after) d[k] = v - (before.has(k) ? before.get(k) : NaN);
  return d;
}

/** A raw neffos client connected to namespace `ns`. */
async function inNs(t, s, ns = 'v1', opts) {
  const c = await RawClient.connect(t, s.url(), opts);
  assert.equal(await c.ask(`$0;${ns};;_OnNamespaceConnect;0;0;`), '$0;;;;;;');
  return c;
}

/** Resolves once the server has closed a TCP socket that sends nothing. */
function idleSocketClosed(port, ms) {
  return withTimeout(new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.on('error', () => {});
    sock.on('close', resolve);
  }), ms, 'the server closing an idle socket');
}

/** The metric names and series the README lists, from its "Health and metrics" paragraph. */
function documented() {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('`GET /metrics`');
  const end = readme.indexOf('`HEAD` on a', start);
  assert.ok(start > 0 && end > start, 'the README lists the metrics after `GET /metrics`');
  const names = new Set(), labelled = new Map();   // family -> [series] or null (any label)
  const prefixes = [];   // neffos_exchange_*, neffos_worker*: only with scale-out, --workers N
  for (const [, tok] of readme.slice(start, end).matchAll(/`(neffos_[^`]+)`/g)) {
    if (tok.endsWith('*')) { prefixes.push(tok.slice(0, -1)); continue; }
    const lab = /^([a-z_]+)\{(\w+)=([^}]*)\}$/.exec(tok);
    if (lab) {
      labelled.set(lab[1], lab[3] === '...' ? null : lab[3].split('|').map((v) => `${lab[1]}{${lab[2]}="${v}"}`));
      continue;
    }
    const alt = /^(.*)\{([^}]*)\}(.*)$/.exec(tok);   // neffos_bytes_{in,out}_total
    for (const n of alt ? alt[2].split(',').map((x) => alt[1] + x + alt[3]) : [tok]) names.add(n);
  }
  return { names, labelled, prefixes };
}

/** The family of a series: its name without labels. */
const family = (series) => series.replace(/\{.*$/, '');

test('the README and /metrics list the same metrics', T, async (t) => {
  const s = await serve(t);
  const m = await scrape(s);
  const { names, labelled, prefixes } = documented();
  assert.ok(names.size >= 15, `found ${names.size} metric names in the README`);
  for (const n of names) assert.ok(m.has(n), `${n} (README) is in /metrics`);
  for (const [fam, series] of labelled) {
    const present = [...m.keys()].filter((k) => family(k) === fam && k !== fam);
    assert.ok(present.length > 0, `${fam} (README) is in /metrics`);
    if (series) assert.deepEqual(present.sort(), [...series].sort(), `${fam}: the README's labels`);
  }
  for (const k of m.keys()) {
    const fam = family(k);
    assert.ok(names.has(fam) || labelled.has(fam) || prefixes.some((p) => fam.startsWith(p)),
      `${k} (/metrics) is documented in the README`);
  }
});

test('connections, upgrades, closed, http requests, endpoints: move with what they count', T, async (t) => {
  const s = await serve(t);
  const m0 = await scrape(s);
  assert.equal(m0.get('neffos_endpoints'), 1);
  const conn = await dial(t, s.url(), { v1: {} });
  const m1 = await scrape(s);
  assert.equal(m1.get('neffos_connections') - m0.get('neffos_connections'), 1);
  assert.equal(m1.get('neffos_upgrades_total') - m0.get('neffos_upgrades_total'), 1);
  // The dial and this scrape: two HTTP requests.
  assert.equal(m1.get('neffos_http_requests_total') - m0.get('neffos_http_requests_total'), 2);
  conn.close();
  await eventually(async () => (await scrape(s)).get('neffos_connections') === m0.get('neffos_connections'),
    'the connection gone from neffos_connections');
  const m2 = await scrape(s);
  assert.equal(m2.get('neffos_closed_total') - m1.get('neffos_closed_total'), 1);
});

test('messages and bytes in and out, invalid frames, handler runs', T, async (t) => {
  const s = await serve(t);
  const c = await inNs(t, s);
  const m0 = await scrape(s);
  const frame = '$1;v1;;echo;0;0;hello';
  assert.equal(await c.ask(frame), frame);
  c.sendText('not a neffos message');
  assert.equal(await c.ask('$2;v1;;echo;0;0;x'), '$2;v1;;echo;0;0;x');
  const d = delta(m0, await scrape(s));
  assert.equal(d.neffos_messages_in_total, 3);
  assert.equal(d.neffos_messages_out_total, 2);
  assert.equal(d.neffos_bytes_in_total, frame.length + 'not a neffos message'.length + '$2;v1;;echo;0;0;x'.length);
  assert.equal(d.neffos_bytes_out_total, Buffer.byteLength(frame) + '$2;v1;;echo;0;0;x'.length);
  assert.equal(d.neffos_invalid_frames_total, 1);
  assert.equal(d.neffos_handler_runs_total, 2);
});

test('handler errors: raised, returned nil, err, and raised after a wait', T, async (t) => {
  const s = await serve(t);
  const c = await inNs(t, s);
  const m0 = await scrape(s);
  assert.equal(await c.ask('$1;v1;;raise;0;0;'), '$1;v1;;raise;1;0;boom');
  assert.equal(await c.ask('$2;v1;;fail;0;0;'), '$2;v1;;fail;1;0;no');
  assert.equal(await c.ask('$3;v1;;fail_late;0;0;'), '$3;v1;;fail_late;1;0;late boom');
  assert.equal(await c.ask('$4;v1;;echo;0;0;fine'), '$4;v1;;echo;0;0;fine');
  const d = delta(m0, await scrape(s));
  assert.equal(d.neffos_handler_errors_total, 3);
  assert.equal(d.neffos_handler_runs_total, 4);
});

test('handler seconds: every slice until the handler ends, not its waits', T, async (t) => {
  const s = await serve(t);
  const c = await inNs(t, s);
  const m0 = await scrape(s);
  // 0.3 s of CPU after a wait: at least 0.3 s of handler time, all of it in the resumed slice.
  assert.equal(await c.ask('$1;v1;;slow;0;0;0.3', 20_000), '$1;v1;;slow;0;0;done');
  const m1 = await scrape(s);
  const busy = m1.get('neffos_handler_seconds_total') - m0.get('neffos_handler_seconds_total');
  assert.ok(busy >= 0.3, `handler seconds grew by ${busy}, want >= 0.3`);
  // 1 s asleep: a wait, not handler time.
  assert.equal(await c.ask('$2;v1;;nap;0;0;1', 20_000), '$2;v1;;nap;0;0;rested');
  const idle = (await scrape(s)).get('neffos_handler_seconds_total') - m1.get('neffos_handler_seconds_total');
  assert.ok(idle < 0.5, `handler seconds grew by ${idle} during a 1 s sleep`);
});

test('broadcasts and their deliveries', T, async (t) => {
  const s = await serve(t);
  const a = await inNs(t, s);
  const b = await inNs(t, s);
  const m0 = await scrape(s);
  assert.equal(await a.ask('$1;v1;;shout;0;0;hi'), ';v1;;news;0;0;hi');   // its own copy first
  assert.equal(await a.nextText(5000, 'the reply'), '$1;v1;;shout;0;0;ok');
  assert.equal(await b.nextText(5000, 'the news'), ';v1;;news;0;0;hi');
  const d = delta(m0, await scrape(s));
  assert.equal(d.neffos_broadcasts_total, 1);
  assert.equal(d.neffos_broadcast_deliveries_total, 2);
});

test('server asks sent and timed out', T, async (t) => {
  const s = await serve(t);
  const c = await inNs(t, s);
  const m0 = await scrape(s);
  c.sendText('$1;v1;;quiz;0;0;0.2');
  const q = await c.nextText(5000, 'the ask');
  assert.match(q, /^\d+;v1;;q;0;0;$/);
  assert.equal(await c.nextText(5000, 'the timeout'), '$1;v1;;quiz;0;0;timeout');   // never answered
  const d = delta(m0, await scrape(s));
  assert.equal(d.neffos_asks_sent_total, 1);
  assert.equal(d.neffos_ask_timeouts_total, 1);
});

test('refusals by reason: limit, bad request, origin, on_connect, handshake timeout', T, async (t) => {
  const s = await serve(t, ['--allowed-origins', 'http://good.example', '--handshake-timeout-ms', '500',
    '--max-connections-per-ip', '4']);
  const m0 = await scrape(s);
  assert.equal((await rawHttp(s.port, 'GET /echo HTTP/1.1\r\nA : b\r\n\r\n')).status, 400);
  await assert.rejects(RawClient.open(t, s.url(), { headers: { Origin: 'http://evil.example' } }), (e) => e.statusCode === 403);
  await assert.rejects(dial(null, s.url(), { v1: {} }, { headers: { 'X-Refuse': '1' } }), /refused/);
  await idleSocketClosed(s.port, 5000);   // sends nothing: cut at the handshake timeout
  const d1 = delta(m0, await scrape(s));
  assert.equal(d1['neffos_refusals_total{reason="bad_request"}'], 1);
  assert.equal(d1['neffos_refusals_total{reason="origin"}'], 1);
  assert.equal(d1['neffos_refusals_total{reason="on_connect"}'], 1);
  assert.equal(d1['neffos_refusals_total{reason="handshake_timeout"}'], 1);
  assert.equal(d1.neffos_handler_errors_total, 1, 'on_connect returned nil, err');

  // Four WebSocket connections from one address, then a fifth socket: refused at accept.
  const held = [];
  for (let i = 0; i < 4; i++) held.push(await inNs(t, s));
  await idleSocketClosed(s.port, 5000);
  for (const c of held) c.close();
  let refusedScrapes = 0;   // a scrape before the server saw the closes is refused too
  await eventually(async () => {
    try { return (await scrape(s)).get('neffos_connections') === 0; } catch { refusedScrapes++; return false; }
  }, 'the held connections gone');
  assert.equal(delta(m0, await scrape(s))['neffos_refusals_total{reason="limit"}'], 1 + refusedScrapes);
});

test('limit hits, one per limit: namespaces, rooms, pending asks, message rate, incoming and outgoing queue', { timeout: 60_000 }, async (t) => {
  const s = await serve(t, ['--max-namespaces-per-conn', '1', '--max-rooms-per-conn', '1', '--max-pending-asks', '1',
    '--max-messages-per-sec', '50', '--max-incoming-queue', '2', '--max-outgoing-bytes', String(64 * 1024)]);
  const hits = (m, l) => m.get(`neffos_limit_hits_total{limit="${l}"}`);
  const m0 = await scrape(s);

  const c = await inNs(t, s);
  assert.equal(await c.ask('$1;v2;;_OnNamespaceConnect;0;0;'), '$1;v2;;_OnNamespaceConnect;1;0;too many namespaces');
  assert.equal(await c.ask('$2;v1;a;_OnRoomJoin;0;0;'), '$2;;;;;;');
  assert.equal(await c.ask('$3;v1;b;_OnRoomJoin;0;0;'), '$3;v1;b;_OnRoomJoin;1;0;too many rooms');

  // Pending asks: c waits for its own answer, and another connection asks c as well.
  c.sendText('$4;v1;;quiz;0;0;30');
  const q = await c.nextText(5000, 'the ask');
  assert.match(q, /^\d+;v1;;q;0;0;$/);
  const other = await inNs(t, s);
  assert.match(await other.ask(`$1;v1;;ask_other;0;0;${c.id}`), /^\$1;v1;;ask_other;0;0;./);
  assert.equal(await c.ask(q.replace(/;$/, ';answer')), '$4;v1;;quiz;0;0;answer');   // no handler left waiting

  // Message rate: 100 frames in one write, over 50 per second.
  const flooder = await inNs(t, s);
  for (let i = 0; i < 100; i++) flooder.sendText(`;v1;;echo;0;0;${i}`);
  assert.equal((await flooder.waitClose(5000)).code, 1008);

  // Incoming queue: frames behind a handler that sleeps, over --max-incoming-queue.
  const queuer = await inNs(t, s);
  queuer.sendText('$1;v1;;nap;0;0;1');
  for (let i = 0; i < 5; i++) queuer.sendText(`$${i + 2};v1;;echo;0;0;x`);
  assert.equal((await queuer.waitClose(5000)).code, 1008);

  // Outgoing queue: one handler run queues 1 MiB to this connection, over 64 KiB (uncompressed:
  // permessage-deflate would queue its repeated bytes as a few KiB).
  const greedy = await inNs(t, s, 'v1', { perMessageDeflate: false });
  greedy.sendText('$1;v1;;flood;0;0;256 4096');
  assert.equal((await greedy.waitClose(10_000)).code, 1008);

  const m1 = await scrape(s);
  assert.equal(hits(m1, 'namespaces') - hits(m0, 'namespaces'), 1);
  assert.equal(hits(m1, 'rooms') - hits(m0, 'rooms'), 1);
  assert.equal(hits(m1, 'message_rate') - hits(m0, 'message_rate'), 1);
  assert.equal(hits(m1, 'incoming_queue') - hits(m0, 'incoming_queue'), 1);
  assert.equal(hits(m1, 'outgoing_queue') - hits(m0, 'outgoing_queue'), 1);
  assert.equal(hits(m1, 'pending_asks') - hits(m0, 'pending_asks'), 1);
});

test('reloads ok and failed; endpoints follow the app', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'neffos-metrics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = path.join(dir, 'app.lua');
  const one = readFileSync(APP, 'utf8');
  writeFileSync(app, one);
  const s = await serve(t, [], dir);
  const m0 = await scrape(s);
  assert.equal(m0.get('neffos_endpoints'), 1);

  // A second endpoint: neffos.server accepts one description; the app returns two servers.
  writeFileSync(app, one.replace('return neffos.server {', 'local main = neffos.server {') +
    '\nreturn { main, neffos.server { endpoint = "/other", namespaces = { v1 = {} } } }\n');
  s.proc.kill('SIGHUP');
  await eventually(async () => (await scrape(s)).get('neffos_reloads_total{result="ok"}') === m0.get('neffos_reloads_total{result="ok"}') + 1,
    'the reload counted', 10_000).catch((e) => { throw new Error(`${e.message}\n${s.logs()}`); });
  const m1 = await scrape(s);
  assert.equal(m1.get('neffos_endpoints'), 2, s.logs());

  writeFileSync(app, 'this is not lua\n');
  s.proc.kill('SIGHUP');
  await eventually(async () => (await scrape(s)).get('neffos_reloads_total{result="failed"}') === m0.get('neffos_reloads_total{result="failed"}') + 1,
    'the failed reload counted', 10_000);
  assert.equal((await scrape(s)).get('neffos_endpoints'), 2, 'a failed reload keeps the app serving');
});
