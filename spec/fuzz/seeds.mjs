#!/usr/bin/env node
// Writes the fuzzers' seed corpora from the protocol vectors file:
//   node spec/fuzz/seeds.mjs [VECTORS] [OUTDIR]
// (defaults: $NEFFOS_VECTORS or spec/vectors/neffos-protocol-vectors.txt, spec/fuzz/corpus).
//
// Every quoted frame of the vectors ("..." with \r, \n and \u00XX = one byte, the rest UTF-8)
// becomes a seed of each target in the input format that target reads:
//   codec/  0x00 + frame                    (parse mode; see fuzz_codec.c)
//           0x01 + fields joined by 0x00    (build mode), for the frames that parse
//   ws/     0x40 + the frame as a masked client WebSocket frame (see fuzz_ws.c), plus a
//           few hand-made sequences (ping, fragments, close)
//   http/   request heads built from the vectors' request lines and headers
//   conn/   hand-made whole sessions in fuzz_conn.c's record format
// The output is deterministic: rerunning it changes nothing unless the vectors changed.

import { mkdirSync, readFileSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const vectors = process.argv[2] || process.env.NEFFOS_VECTORS ||
  path.join(root, 'spec', 'vectors', 'neffos-protocol-vectors.txt');
const outDir = process.argv[3] || path.join(here, 'corpus');

/** The bytes of one quoted literal body (between the quotes), per the file's notation. */
function decodeLiteral(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\') {
      out.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const e = s[++i];
    if (e === 'r') out.push(13);
    else if (e === 'n') out.push(10);
    else if (e === 't') out.push(9);
    else if (e === 'u') { out.push(parseInt(s.slice(i + 1, i + 5), 16) & 0xff); i += 4; }
    else out.push(...Buffer.from(e, 'utf8'));   // \" and \\
  }
  return Buffer.from(out);
}

/** Every "..." literal on a line (escaped quotes allowed inside). */
function literals(line) {
  const res = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(line))) res.push(m[1]);
  return res;
}

function maskedFrame(b0, payload) {
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const n = payload.length;
  let head;
  if (n < 126) head = Buffer.from([b0, 0x80 | n]);
  else if (n < 65536) head = Buffer.from([b0, 0x80 | 126, n >> 8, n & 0xff]);
  else { head = Buffer.alloc(10); head[0] = b0; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(n), 2); }
  const body = Buffer.from(payload.map((x, i) => x ^ key[i % 4]));
  return Buffer.concat([head, key, body]);
}

const text = readFileSync(vectors, 'utf8');
const frames = [];      // {id, bytes, binary}
const requestLines = [];
const headerLines = [];
let id = null;
let started = false;
for (const line of text.split('\n')) {
  if (/^A\. /.test(line)) started = true;
  if (!started) continue;
  const m = /^([A-Z]\d\d)\b/.exec(line);
  if (m) id = m[1];
  if (!id) continue;
  for (const lit of literals(line)) {
    const bytes = decodeLiteral(lit);
    if (/^(GET|HEAD|POST) \//.test(lit)) { requestLines.push(lit); continue; }
    if (/^[A-Za-z-]+: /.test(lit)) { headerLines.push(lit); continue; }
    frames.push({ id, bytes, binary: /\bBIN\b/.test(line) });
  }
}

// Unique by content, in file order.
const seen = new Set();
const uniq = frames.filter((f) => {
  const k = (f.binary ? 'b' : 't') + f.bytes.toString('latin1');
  if (seen.has(k)) return false;
  seen.add(k);
  return true;
});

const out = { codec: [], ws: [], http: [] };
const count = {};
const name = (prefix) => { count[prefix] = (count[prefix] || 0) + 1; return `${prefix}-${count[prefix]}`; };

for (const f of uniq) {
  out.codec.push([name(`${f.id}-parse`), Buffer.concat([Buffer.from([0]), f.bytes])]);
  const parts = f.bytes.toString('latin1').split(';');
  if (parts.length >= 7) {
    // build mode: flags byte, then wait, ns, room, event, body separated by NUL
    const flags = (parts[4] === '1' ? 1 : 0) | (parts[5] === '1' ? 2 : 0);
    const fields = [parts[0], parts[1], parts[2], parts[3], parts.slice(6).join(';')];
    out.codec.push([name(`${f.id}-build`), Buffer.concat([Buffer.from([1, flags]), Buffer.from(fields.join('\0'), 'latin1')])]);
  }
  out.ws.push([name(`${f.id}-frame`), Buffer.concat([Buffer.from([0x40]), maskedFrame(f.binary ? 0x82 : 0x81, f.bytes)])]);
}

// Hand-made WebSocket sequences: the shapes the vectors cannot show.
const seq = (chunkByte, ...parts) => Buffer.concat([Buffer.from([chunkByte]), ...parts]);
const t = (s) => Buffer.from(s, 'utf8');
out.ws.push(['ws-ping-pong', seq(0x40, maskedFrame(0x89, t('ping')), maskedFrame(0x8a, t('')))]);
out.ws.push(['ws-fragments', seq(0x03, maskedFrame(0x01, t(';default;;ch')), maskedFrame(0x89, t('x')),
  maskedFrame(0x80, t('at;0;0;hello')))]);
out.ws.push(['ws-utf8-split', seq(0x01, maskedFrame(0x01, Buffer.from([0xce])), maskedFrame(0x80, Buffer.from([0xba])))]);
out.ws.push(['ws-close-1000', seq(0x40, maskedFrame(0x88, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])))]);
out.ws.push(['ws-close-bad-code', seq(0x40, maskedFrame(0x88, Buffer.from([0x03, 0xed])))]);
out.ws.push(['ws-64bit-len', seq(0x40, Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4]))]);
out.ws.push(['ws-server-sends', seq(0x80 | 0x10, maskedFrame(0x81, t('M')), maskedFrame(0x81, t(';v1;;echo;0;0;hi')))]);

const head = (reqLine, extra = []) => Buffer.from([
  `${reqLine} HTTP/1.1`, 'Host: 127.0.0.1:8080', 'Upgrade: websocket', 'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', ...extra, '', ''].join('\r\n'), 'latin1');
for (const rl of requestLines) out.http.push([name('req'), head(rl)]);
out.http.push([name('req'), head('GET /echo', headerLines)]);
out.http.push([name('req'), head('GET /echo', ['Origin: http://example.com', 'X-Username: alice'])]);
out.http.push([name('req'), Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\n\r\n')]);
out.http.push([name('req'), Buffer.from('HEAD /echo HTTP/1.0\r\n\r\n')]);

// conn/: whole sessions in fuzz_conn.c's record format (op, len, data): the HTTP upgrade, "M",
// namespace and room requests, events the app answers by their first letter, server asks and
// their answers, the clock, a client that stops reading, the close.
out.conn = [];
const rec = (op, data = Buffer.alloc(0)) => {
  const b = Buffer.isBuffer(data) ? data : t(data);
  const parts = [];
  for (let o = 0; o === 0 || o < b.length; o += 255) {
    const chunk = b.subarray(o, o + 255);
    parts.push(Buffer.from([op, chunk.length]), chunk);
  }
  return Buffer.concat(parts);
};
const upgradeTo = (target) => rec(0, `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
const TEXT = 1, BIN = 2, PING = 3, CLOSE = 4, FRAME = 5, CLOCK = 6, READ = 7, FINISH = 8, ANSWER = 9,
  TCP_CLOSE = 10, BROADCAST = 11, SERVER_CLOSE = 12, SERVER_ASK = 13, REPEAT = 14;
const session = (...recs) => Buffer.concat([upgradeTo('/echo'), rec(TEXT, 'M'), ...recs]);
const connect = rec(TEXT, '$1;default;;_OnNamespaceConnect;0;0;');
out.conn.push(['session', session(connect, rec(TEXT, '$2;default;room1;_OnRoomJoin;0;0;'),
  rec(TEXT, ';default;room1;rchat;0;0;hello'), rec(TEXT, '$3;default;;rask;0;0;question'),
  rec(TEXT, '$4;default;;echat;0;0;failing'), rec(TEXT, '$5;default;room1;_OnRoomLeave;0;0;'),
  rec(TEXT, '$6;default;;_OnNamespaceDisconnect;0;0;'), rec(CLOSE, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])))]);
out.conn.push(['session-wait', session(connect, rec(TEXT, '$2;default;;wslow;0;0;'),
  rec(TEXT, ';default;;rnext;0;0;1'), rec(TEXT, '$3;default;r;_OnRoomJoin;0;0;'), rec(FINISH, '\x01done'),
  rec(CLOCK, '\x0a'), rec(TCP_CLOSE))]);
out.conn.push(['session-server-ask', session(connect, rec(TEXT, '$2;default;;aback;0;0;who'),
  rec(ANSWER, ';default;;q;0;0;alice'), rec(SERVER_ASK, '\x05body'), rec(ANSWER, ';;;;;;'),
  rec(SERVER_ASK, '\x01x'), rec(CLOCK, '\x02'), rec(ANSWER, ';;;;;;'))]);
out.conn.push(['session-forced', Buffer.concat([upgradeTo('/echo?force1'), rec(TEXT, 'M'), rec(ANSWER, ';;;;;;'), connect,
  rec(TEXT, ';default;;jx;0;0;r'), rec(ANSWER, ';;;;;;'), rec(BROADCAST, '\x01to room'),
  rec(TEXT, ';default;;lx;0;0;r'), rec(ANSWER, ';;;;;;'), rec(TEXT, ';default;;dx;0;0;'), rec(ANSWER, ';;;;;;'),
  rec(TEXT, ';default;;cx;0;0;chat'), rec(SERVER_CLOSE, 'bye')])]);
out.conn.push(['session-slow-reader', session(connect, rec(READ, '\x00'),
  rec(TEXT, ';default;;fflood;0;0;' + 'x'.repeat(200)), rec(TEXT, ';default;;fflood;0;0;' + 'y'.repeat(200)),
  rec(PING, 'p'.repeat(125)), rec(PING, 'q'.repeat(125)), rec(CLOCK, '\x14'), rec(CLOCK, '\x14'), rec(READ, '\x01'))]);
out.conn.push(['session-limits', session(connect, rec(TEXT, '$2;chat;;_OnNamespaceConnect;0;0;'),
  rec(TEXT, '$3;deny;;_OnNamespaceConnect;0;0;'), rec(TEXT, '$4;default;a;_OnRoomJoin;0;0;'),
  rec(TEXT, '$5;default;b;_OnRoomJoin;0;0;'), rec(TEXT, '$6;default;deny;_OnRoomJoin;0;0;'),
  rec(TEXT, '$7;default;;wx;0;0;'), ...Array.from({ length: 10 }, (_, i) => rec(TEXT, `;default;;r;0;0;${i}`)))]);
out.conn.push(['session-repeat', session(connect, rec(TEXT, '$2;default;;wx;0;0;'), rec(TEXT, ';default;;r;0;0;x'),
  rec(REPEAT, '\x05'), rec(FINISH, '\x01'), rec(READ, '\x00'), rec(TEXT, ';default;;fz;0;0;' + 'z'.repeat(240)),
  rec(REPEAT, '\x10'), rec(READ, '\x01'))]);
out.conn.push(['session-fragments', session(connect, rec(FRAME, Buffer.concat([Buffer.from([0x01]), t(';default;;r')])),
  rec(PING, 'x'), rec(FRAME, Buffer.concat([Buffer.from([0x80]), t('echo;0;0;hello')])), rec(BIN, ';default;;rb;0;0;\u0001'))]);
out.conn.push(['session-refused', Buffer.concat([upgradeTo('/echo?deny-me'), rec(TEXT, 'M'), rec(TEXT, 'M')])]);
out.conn.push(['session-wait-connect', Buffer.concat([upgradeTo('/echo?wait1'), rec(TEXT, 'M'), connect,
  rec(TEXT, ';default;;r;0;0;held'), rec(FINISH, '\x00'), rec(TEXT, '$9;default;;rq;0;0;')])]);
out.conn.push(['session-native', Buffer.concat([upgradeTo('/raw'), rec(TEXT, 'M'), rec(BIN, 'raw bytes'), rec(CLOSE)])]);
out.conn.push(['session-mixed', session(rec(TEXT, '$1;;;_OnNamespaceConnect;0;0;'), rec(TEXT, 'not a message'))]);
out.conn.push(['handshake-timeout', Buffer.concat([upgradeTo('/echo'), rec(CLOCK, '\x64'), rec(CLOCK, '\x0b')])]);
out.conn.push(['http-partial', Buffer.concat([rec(0, 'GET /echo HTTP/1.1\r\nHost: x\r\n'), rec(CLOCK, '\x64')])]);
out.conn.push(['http-other', Buffer.concat([rec(0, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')])]);
out.conn.push(['http-head', Buffer.concat([rec(0, 'HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n')])]);
out.conn.push(['http-bad', Buffer.concat([rec(0, 'GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n')])]);

for (const [target, files] of Object.entries(out)) {
  const dir = path.join(outDir, target);
  mkdirSync(dir, { recursive: true });
  for (const old of readdirSync(dir)) rmSync(path.join(dir, old));
  for (const [n, b] of files) writeFileSync(path.join(dir, n), b);
  console.log(`${dir}: ${files.length} seeds`);
}
