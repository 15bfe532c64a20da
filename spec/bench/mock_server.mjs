// mock_server.mjs - a minimal neffos server in Node (ws), only for checking
// neffos-bench itself while the real server is not available:
//   node spec/bench/mock_server.mjs PORT
// It implements what the bench app does: "M" -> "A<id>", namespace v1
// connect -> empty reply, echo -> reply with the body, shout -> broadcast
// as chat to every other connection in v1. Not a conformance reference.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 18081);
const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/echo' });
const inV1 = new Set();
let next = 1;

wss.on('connection', (ws) => {
  const id = `mock-${next++}`;
  let acked = false;
  ws.on('message', (data, isBinary) => {
    const s = data.toString();
    if (!acked) {
      if (s === 'M') { acked = true; ws.send(`A${id}`); }
      return;
    }
    const parts = s.split(';');
    if (parts.length < 7) return;
    const [wait, ns, room, event] = parts;
    const body = parts.slice(6).join(';');
    if (event === '_OnNamespaceConnect') {
      if (ns !== 'v1') { ws.send(`${wait};${ns};;${event};1;0;bad namespace`); return; }
      inV1.add(ws);
      ws.send(`${wait};;;;;;`);
      if (process.env.MOCK_EDGES) {
        // Exercise the client's frame parser: ping, a fragmented message,
        // a server ask (digits token) the client should answer.
        ws.ping('p1');
        ws.send(';v1;;chat;0;0;frag-', { fin: false });
        ws.send('ment-', { fin: false });
        ws.send('ed', { fin: true });
        ws.send(`77;v1;;question;0;0;q`);
      }
    } else if (event === 'echo') {
      if (wait) ws.send(`${wait};${ns};${room};echo;0;0;${body}`);
    } else if (event === 'question' && wait === '77') {
      console.error(`server ask answered: ${s}`);
    } else if (event === 'shout') {
      const out = `;v1;;chat;0;0;${body}`;
      for (const o of inV1) if (o !== ws) o.send(out);
    }
  });
  ws.on('pong', (d) => { if (process.env.MOCK_EDGES) console.error(`pong ${d}`); });
  ws.on('close', () => inV1.delete(ws));
});
wss.on('listening', () => console.error(`mock neffos on ws://127.0.0.1:${port}/echo`));
