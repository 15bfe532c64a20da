// examples/scale-out/run.sh: the chat example on two ports sharing one Redis (or NATS). A
// message typed on one port reaches the room on the other; Ctrl-C (SIGINT) stops all three
// processes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT, BIN, dial, eventually, withTimeout, sleep, canConnect, freePort } from '../interop/lib/server.mjs';

// Free ports, asked of the kernel (fixed ranges collide with the ephemeral ports of other
// tests running at the same time).
async function ports() {
  const got = new Set();
  while (got.size < 3) got.add(await freePort());
  const [web, web2, broker] = got;
  return { web, web2, broker };
}

async function chatter(t, port, name, room, onChat) {
  const conn = await dial(t, `ws://127.0.0.1:${port}/echo`, { default: { chat: (ns, msg) => onChat(msg) } },
    { headers: { 'X-Username': name } });
  const ns = await withTimeout(conn.connect('default'), 5000, `${name} connects`);
  await withTimeout(ns.joinRoom(room), 5000, `${name} joins ${room}`);
  return ns;
}

for (const broker of ['redis', 'nats']) {
  test(`examples/scale-out/run.sh with ${broker}: chat across two processes, Ctrl-C stops everything`, { timeout: 60_000 }, async (t) => {
    const p = await ports();
    let out = '';
    const proc = spawn(path.join(ROOT, 'examples', 'scale-out', 'run.sh'), [], {
      cwd: ROOT,
      detached: true,   // its own process group: killed as a whole if the test fails
      env: { ...process.env, NEFFOS_BIN: BIN, BROKER: broker, PORT: String(p.web), PORT2: String(p.web2), BROKER_PORT: String(p.broker) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (d) => { out += d; });
    proc.stderr.on('data', (d) => { out += d; });
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    let done = false;
    after(() => { if (!done) try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ } });

    await eventually(async () => (await canConnect(p.web)) && (await canConnect(p.web2)), `both servers up\n${out}`, 20_000, 100);
    const heard = [];
    const alice = await chatter(t, p.web, 'alice', 'lobby', () => {});
    await chatter(t, p.web2, 'bob', 'lobby', (msg) => heard.push(JSON.parse(msg.Body)));
    await eventually(async () => {
      alice.room('lobby').emit('chat', JSON.stringify({ text: 'hello from 1' }));
      await sleep(100);
      return heard.length > 0;
    }, `bob, on the other process, hears alice\n${out}`, 10_000, 0);
    assert.deepEqual(heard[0], { from: 'alice', text: 'hello from 1' });

    process.kill(proc.pid, 'SIGINT');
    const status = await withTimeout(exited, 15_000, 'run.sh exits after SIGINT');
    done = true;
    assert.equal(status.code, 130, out);
    await eventually(async () => !(await canConnect(p.web)) && !(await canConnect(p.web2)) && !(await canConnect(p.broker)),
      `every process stopped\n${out}`, 10_000, 100);
  });
}
