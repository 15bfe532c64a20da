// The chat page: dial /echo with the user name as the X-Username header (neffos.js in a
// browser sends it as a query parameter), connect to "default", join a room, chat.
import * as neffos from '/neffos.min.js';

const $ = (id) => document.getElementById(id);
const messages = $('messages');

let conn = null;  // the neffos connection, dialled once with the first user name
let ns = null;    // namespace "default"
let room = null;  // the joined room, or null

function show(kind, text, from) {
  const li = document.createElement('li');
  li.className = kind;
  if (from) {
    const b = document.createElement('span');
    b.className = 'from';
    b.textContent = from;
    li.append(b);
  }
  li.append(text); // text, never HTML: messages come from other people
  messages.append(li);
  messages.scrollTop = messages.scrollHeight;
}

function setJoined(r) {
  room = r;
  $('room').disabled = $('join').disabled = !!r;
  $('text').disabled = $('send').disabled = !r;
  $('status').textContent = r ? `${conn.ID} in ${r.name}` : (conn ? `${conn.ID}, no room` : 'not connected');
  (r ? $('text') : $('room')).focus();
}

const handlers = {
  default: {
    chat(nsConn, msg) {
      const m = msg.unmarshal();
      show('chat', m.text, m.from);
    },
    notify(nsConn, msg) { show('notice', msg.Body); },
    // neffos.js has no close callback: a forced namespace disconnect is how a closed socket shows.
    [neffos.OnNamespaceDisconnect](nsConn, msg) {
      if (msg.IsForced) {
        show('error', 'disconnected from the server; reload the page to reconnect');
        conn = ns = null;
        setJoined(null);
        $('join').disabled = $('room').disabled = true;
      }
    },
  },
};

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('room').value.trim();
  if (!name) return;
  $('join').disabled = true;
  try {
    if (!conn) {
      const username = $('username').value.trim();
      conn = await neffos.dial('/echo', handlers, { headers: { 'X-Username': username } });
      ns = await conn.connect('default');
      $('username').disabled = true;
    }
    setJoined(await ns.joinRoom(name));
    show('notice', `you joined ${name} as ${conn.ID}`);
  } catch (err) {
    show('error', `cannot join: ${err?.message ?? err?.type ?? err}`);
    $('join').disabled = false;
  }
});

$('send-form').addEventListener('submit', async (e) => {
  e.preventDefault(); // Enter in the input submits the form, as does the button
  const text = $('text').value;
  if (!text.trim() || !room) return;
  $('text').value = '';
  if (text.trim() === 'leave') {
    const name = room.name;
    const err = await room.leave().catch((e) => e);
    if (err) { show('error', `cannot leave: ${err.message ?? err}`); return; }
    setJoined(null);
    show('notice', `you left ${name}`);
    return;
  }
  if (room.emit('chat', neffos.marshal({ from: conn.ID, text }))) show('chat mine', text, 'me');
  else show('error', 'not sent: the connection is closed');
});

$('username').focus();
