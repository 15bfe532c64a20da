// A WebSocket client on a raw TCP socket: the upgrade by hand, then hand-made frames
// (any bits, any mask, any length field), and a parser that reports every frame the
// server sends plus the end of the TCP connection. For RFC 6455 strictness tests.

import net from 'node:net';
import { withTimeout } from '../../interop/lib/server.mjs';

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** One frame's bytes. opts: {fin=true, rsv=0, mask=true, len (override the length field
 *  as a BigInt or number: the payload sent is still `payload`), key}. */
export function frame(opcode, payload = Buffer.alloc(0), opts = {}) {
  const { fin = true, rsv = 0, mask = true, key = KEY } = opts;
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const n = BigInt(opts.len ?? data.length);
  const b0 = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  const m = mask ? 0x80 : 0;
  let head;
  if (n < 126n) head = Buffer.from([b0, m | Number(n)]);
  else if (n < 65536n) head = Buffer.from([b0, m | 126, Number(n >> 8n), Number(n & 0xffn)]);
  else { head = Buffer.alloc(10); head[0] = b0; head[1] = m | 127; head.writeBigUInt64BE(n, 2); }
  if (!mask) return Buffer.concat([head, data]);
  const body = Buffer.from(data.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([head, key, body]);
}

export const OP = { CONT: 0, TEXT: 1, BIN: 2, CLOSE: 8, PING: 9, PONG: 10 };

/** Close payload: 2-byte code + reason (a Buffer or string). */
export function closePayload(code, reason = '') {
  const r = Buffer.isBuffer(reason) ? reason : Buffer.from(reason, 'utf8');
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

export class RawWs {
  constructor(sock, rest) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.frames = [];
    this.waiters = [];
    this.ended = false;
    this.endedAt = null;
    this.protocolError = null;   // the server sent something that is not a valid frame
    this.end = new Promise((resolve) => {
      const done = () => {
        if (this.ended) return;
        this.ended = true;
        this.endedAt = Date.now();
        resolve();
        for (const w of this.waiters.splice(0)) w();
      };
      sock.on('close', done);
      sock.on('end', done);
    });
    sock.on('error', () => {});
    sock.on('data', (d) => this.#onData(d));
    if (rest.length) this.#onData(rest);
  }

  /** Opens TCP, sends the upgrade, waits for 101. */
  static async open(t, port, path = '/raw', ms = 5000) {
    return (await RawWs.upgrade(t, net.connect({ host: '127.0.0.1', port }), { port, path, ms })).ws;
  }

  /** Sends the upgrade request on `sock` (connecting or connected: TCP or TLS), with `extra` header
   *  lines (each ending in CRLF) and `after` (bytes written in the same write, behind the request),
   *  waits for 101; resolves { ws, head } (head: the answer's header lines). */
  static upgrade(t, sock, { port, path = '/raw', extra = '', after = Buffer.alloc(0), ms = 5000 } = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (d) => {
        buf = Buffer.concat([buf, d]);
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        sock.off('data', onData);
        const head = buf.slice(0, i).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(head)) {
          sock.destroy();
          reject(new Error(`upgrade refused: ${head.split('\r\n')[0]}`));
          return;
        }
        t?.after(() => sock.destroy());
        resolve({ ws: new RawWs(sock, buf.slice(i + 4)), head });
      };
      const send = () => sock.write(Buffer.concat([Buffer.from(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`), after]));
      sock.on('data', onData);
      sock.once('error', reject);
      if (sock.connecting === false && !sock.pending) send();
      else sock.once(sock.encrypted ? 'secureConnect' : 'connect', send);
    }), ms, `WebSocket upgrade on ${path}`);
  }

  #onData(d) {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (b[1] & 0x80) { this.protocolError = 'masked server frame'; }
      if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); off = 10; }
      if (b.length < off + len) return;
      const f = { fin: !!(b[0] & 0x80), rsv: (b[0] >> 4) & 7, opcode: b[0] & 0x0f, payload: b.slice(off, off + len) };
      if (f.rsv) this.protocolError = `RSV bits ${f.rsv} in a server frame`;
      if (f.opcode === OP.CLOSE) {
        f.code = len >= 2 ? f.payload.readUInt16BE(0) : null;
        f.reason = len > 2 ? f.payload.slice(2).toString('utf8') : '';
      }
      this.buf = b.slice(off + len);
      this.frames.push(f);
      for (const w of this.waiters.splice(0)) w();
    }
  }

  write(...bufs) { this.sock.write(Buffer.concat(bufs)); }
  send(opcode, payload, opts) { this.write(frame(opcode, payload, opts)); }

  /** The next frame from the server; rejects on timeout or if TCP ended first. */
  async next(ms = 3000, what = 'a frame') {
    const end = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.ended) throw new Error(`the connection ended while waiting for ${what}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.frames.shift();
  }

  /** Waits for the server's close frame (skipping nothing: the next frame must be it)
   *  and for the TCP connection to end; returns the close frame. */
  async closeFrame(ms = 3000) {
    const f = await this.next(ms, 'the close frame');
    if (f.opcode !== OP.CLOSE) {
      throw new Error(`expected a close frame, got opcode ${f.opcode} ${JSON.stringify(f.payload.toString('latin1').slice(0, 80))}`);
    }
    await withTimeout(this.end, ms, 'the server ending the TCP connection after its close frame');
    return f;
  }

  /** Resolves if nothing arrives and the connection stays open for `ms`. */
  async quiet(ms = 200) {
    await new Promise((r) => setTimeout(r, ms));
    if (this.frames.length) throw new Error(`expected nothing, got opcode ${this.frames[0].opcode}`);
    if (this.ended) throw new Error('expected the connection to stay open; it ended');
  }

  destroy() { this.sock.destroy(); }
}
