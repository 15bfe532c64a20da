// Helpers of the reload tests that count reloads around one save (spec/reload/save and
// container): an app that reports how many times its top level and on_reload ran, a
// /health monitor, and the barrier that makes "exactly one reload" an ordered fact
// instead of a wait: after an episode, one more distinct save is made and awaited. The
// watcher reads events in order, so once that save is served every event of the episode
// has been taken in, and any extra reload it caused has already happened.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { withTimeout, eventually, rawHttp, sleep } from '../../interop/lib/server.mjs';

/** app.lua: `who` answers "<tag>|<util.name>|<top-level runs>|<on_reload runs>". */
export function appSource(tag, { requires = ['util'] } = {}) {
  const reqs = requires.map((m) => `local ${m} = require "${m}"`).join('\n');
  const parts = requires.map((m) => `${m}.name`).join(' .. "+" .. ');
  return `local neffos = require "neffos"
${reqs}
local state = neffos.state
state.loads = (state.loads or 0) + 1
return neffos.server {
  endpoint = "/echo",
  on_reload = function() state.reloads = (state.reloads or 0) + 1 end,
  namespaces = {
    v1 = {
      who = function()
        return ${JSON.stringify(tag)} .. "|" .. ${parts || '""'} .. "|" .. state.loads .. "|" .. (state.reloads or 0)
      end,
    },
  },
}
`;
}
export const moduleSource = (name) => `return { name = ${JSON.stringify(name)} }\n`;

/** Parses the answer of `who`. */
export async function who(ns) {
  const body = (await withTimeout(ns.ask('who', ''), 5000, 'ask who')).Body;
  const [tag, util, loads, reloads] = body.split('|');
  return { tag, util, loads: Number(loads), reloads: Number(reloads) };
}

/** Waits (bounded) until `who` answers with this tag (and module name, if given). */
export async function served(ns, tag, util = null) {
  return eventually(async () => {
    const w = await who(ns);
    return w.tag === tag && (util === null || w.util === util) && w;
  }, `the server to answer from ${tag}${util ? `/${util}` : ''}`, 10_000, 10);
}

/** Polls GET /health back to back until stopped; keeps every answer that is not 200. */
export function healthMonitor(port) {
  const bad = [];
  let running = true, polls = 0;
  const loop = (async () => {
    while (running) {
      try {
        const r = await rawHttp(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
        polls++;
        if (r.status !== 200) bad.push(`${r.status} ${r.body.trim()}`);
      } catch (e) {
        bad.push(`no answer: ${e.message}`);
      }
      await sleep(2);
    }
  })();
  return {
    bad,
    async stop() { running = false; await loop; return polls; },
  };
}

/**
 * Runs `save` (which ends with the files holding version `tag`) while /health is
 * polled, waits until `tag` serves, then saves and awaits the barrier. Asserts one
 * reload for the save (top level and on_reload once each), /health never other than
 * 200, and no "reload failed" in the log.
 */
export async function oneReload(server, ns, { tag, util = null, save, barrier }) {
  const before = await who(ns);
  const logStart = server.logs().length;
  const mon = healthMonitor(server.port);
  try {
    await save();
    await served(ns, tag, util);
    const barrierTag = `${tag}-barrier`;
    barrier(barrierTag);
    await served(ns, barrierTag);
  } finally {
    const polls = await mon.stop();
    assert.ok(polls > 0, '/health was polled');
  }
  const after = await who(ns);
  assert.deepEqual(mon.bad, [], '/health stayed 200 throughout');
  assert.doesNotMatch(server.logs().slice(logStart), /reload failed/, 'no failed reload reported');
  assert.equal(after.reloads - before.reloads, 2, 'on_reload ran once for the save and once for the barrier');
  assert.equal(after.loads - before.loads, 2, 'the top level ran once for the save and once for the barrier');
}

/** Writes `text` in two halves through one descriptor with a pause between (a slow writer). */
export async function slowWrite(fs, file, text, pauseMs) {
  const fd = fs.openSync(file, 'w');
  try {
    const half = Math.ceil(text.length / 2);
    fs.writeSync(fd, text.slice(0, half));
    await sleep(pauseMs);
    fs.writeSync(fd, text.slice(half));
  } finally {
    fs.closeSync(fd);
  }
}

export const write = (file, text) => writeFileSync(file, text);
