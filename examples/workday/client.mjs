// A terminal client for examples/workday, with the real neffos.js (run `npm ci` once at the repo root).
//   node examples/workday/client.mjs [ws://127.0.0.1:8080/echo]
// Type a date as mm-dd-yyyy; the server says whether it is a working day.
import * as neffos from 'neffos.js';
import readline from 'node:readline';

const url = process.argv[2] || 'ws://127.0.0.1:8080/echo';
const conn = await neffos.dial(url, { default: {} });
const ns = await conn.connect('default');
console.log('type a date (mm-dd-yyyy), Ctrl-D to quit');

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  try {
    console.log((await ns.ask('workday', line.trim())).Body);
  } catch (err) {
    console.log(`error: ${err?.message ?? err}`);
  }
}
conn.close();
