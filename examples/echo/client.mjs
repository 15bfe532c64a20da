// A terminal client for examples/echo, with the real neffos.js (run `npm ci` once at the repo root).
//   node examples/echo/client.mjs [ws://127.0.0.1:8080/echo]
// Every line typed is asked as the "echo" event of namespace "v1"; the answer is printed.
import * as neffos from 'neffos.js';
import readline from 'node:readline';

const url = process.argv[2] || 'ws://127.0.0.1:8080/echo';
const conn = await neffos.dial(url, { v1: { echo: (ns, msg) => console.log(msg.Body) } });
const ns = await conn.connect('v1');
console.log(`connected as ${conn.ID}; type a line (Ctrl-D to quit)`);

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  try {
    console.log((await ns.ask('echo', line)).Body);
  } catch (err) {
    console.log(`error: ${err?.message ?? err}`);
  }
}
conn.close();
