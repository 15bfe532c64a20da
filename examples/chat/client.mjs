// A terminal client for examples/chat, with the real neffos.js (run `npm ci` once at the repo root).
//   node examples/chat/client.mjs [NAME [ROOM [URL]]]
// URL defaults to ws://127.0.0.1:$PORT/echo, PORT to 8080 (as for run.sh).
// Asks for the missing name and room. Each line you type goes to the others in the room;
// `leave` leaves the room (then a line names the next room to join); Ctrl-D quits.
import * as neffos from 'neffos.js';
import readline from 'node:readline';

const [argName, argRoom, url = `ws://127.0.0.1:${process.env.PORT || 8080}/echo`] = process.argv.slice(2);
const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
let quitting = false; // set at EOF, before our own conn.close()

async function ask(prompt) {
  process.stdout.write(prompt);
  const { value, done } = await lines.next();
  if (done) process.exit(0);
  if (!process.stdin.isTTY) process.stdout.write('\n'); // a terminal echoes the Enter; a pipe does not
  return value.trim();
}

const username = argName || await ask('name: ');
const roomName = argRoom || await ask('room: ');

const conn = await neffos.dial(url, {
  default: {
    chat(ns, msg) {
      const m = msg.unmarshal();
      console.log(`${m.from}: ${m.text}`);
    },
    notify(ns, msg) { console.log(`* ${msg.Body}`); },
    // neffos.js has no close callback: a forced disconnect that we did not start is the server going.
    [neffos.OnNamespaceDisconnect](ns, msg) {
      if (msg.IsForced && !quitting) { console.log('* disconnected from the server'); process.exit(1); }
    },
  },
}, {
  headers: { 'X-Username': username },
  // neffos.js 0.1.34 with ws >= 8.17 may drop a frame that shares a TCP read with the
  // reply it is waiting for; asynchronous ws events avoid that.
  allowSynchronousEvents: false,
}).catch((err) => {
  console.error(`cannot connect to ${url}: ${err?.message ?? err}`);
  process.exit(1);
});
const ns = await conn.connect('default');

let room = null;
async function join(name) {
  try {
    room = await ns.joinRoom(name);
    console.log(`* you joined ${name} as ${conn.ID}; type leave to leave, Ctrl-D to quit`);
  } catch (err) {
    console.log(`* cannot join ${name}: ${err?.message ?? err}`);
  }
}
await join(roomName);

for await (const raw of lines) {
  const text = raw.trim();
  if (!text) continue;
  if (!room) {
    await join(text);
  } else if (text === 'leave') {
    const err = await room.leave().catch((e) => e);
    if (err) console.log(`* cannot leave: ${err.message ?? err}`);
    else { console.log(`* you left ${room.name}; type a room to join`); room = null; }
  } else if (!room.emit('chat', neffos.marshal({ from: conn.ID, text }))) {
    console.log('* not sent: the connection is closed');
  }
}
quitting = true;
conn.close();
