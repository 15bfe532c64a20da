// The two examples, started as a user would (`neffos examples/echo`), driven like the neffos docs:
// Getting Started (echo) and Request-Response (workday).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { T, useServer, dial, withTimeout } from './lib/server.mjs';

describe('examples/echo (Getting Started)', () => {
  const h = useServer('examples/echo');

  test('ask echo in namespace v1 gets "echo back: " + body', T, async (t) => {
    const conn = await dial(t, h.server.url('/echo'), { v1: {} });
    const ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
    for (const body of ['Greetings!', 'hello;world', '']) {
      const r = await withTimeout(ns.ask('echo', body), 5000, `ask ${body}`);
      assert.equal(r.Body, `echo back: ${body}`);
    }
  });

  test('emit echo: the reply arrives at the client\'s own echo handler, as in the docs', T, async (t) => {
    let resolve;
    const got = new Promise((r) => { resolve = r; });
    const conn = await dial(t, h.server.url('/echo'), { v1: { echo: (ns, msg) => { resolve(msg.Body); } } });
    const ns = await withTimeout(conn.connect('v1'), 5000, 'connect v1');
    ns.emit('echo', 'Greetings!');
    assert.equal(await withTimeout(got, 5000, 'echo event'), 'echo back: Greetings!');
  });
});

describe('examples/workday (Request-Response)', () => {
  const h = useServer('examples/workday');
  const names = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const fmt = (d) => [d.getUTCMonth() + 1, d.getUTCDate()].map((n) => String(n).padStart(2, '0')).join('-') +
    `-${d.getUTCFullYear()}`;

  async function workday(t) {
    const conn = await dial(t, h.server.url('/echo'), { default: {} });
    const ns = await withTimeout(conn.connect('default'), 5000, 'connect default');
    return (body) => withTimeout(ns.ask('workday', body), 5000, `workday ${body}`);
  }

  test('every day of two weeks: weekdays by name, weekends "day off"', T, async (t) => {
    const ask = await workday(t);
    for (let i = 0; i < 14; i++) {
      const d = new Date(Date.UTC(2019, 5, 20 + i)); // across a month end
      const day = d.getUTCDay();
      if (day === 0 || day === 6) {
        await assert.rejects(ask(fmt(d)), (e) => e instanceof Error && e.message === 'day off', fmt(d));
      } else {
        assert.equal((await ask(fmt(d))).Body, `it's ${names[day]}, do your job.`, fmt(d));
      }
    }
  });

  test('leap days: 02-29 exists in 2020 and 2000, not in 2019 or 1900', T, async (t) => {
    const ask = await workday(t);
    for (const y of [2020, 2000]) {
      const d = new Date(Date.UTC(y, 1, 29));
      const day = d.getUTCDay();
      const p = ask(fmt(d));
      if (day === 0 || day === 6) await assert.rejects(p, (e) => e.message === 'day off');
      else assert.equal((await p).Body, `it's ${names[day]}, do your job.`);
    }
    for (const bad of ['02-29-2019', '02-29-1900', '04-31-2019', '01-32-2019', '01-00-2019']) {
      await assert.rejects(ask(bad), (e) => /day/i.test(e.message) && e.message !== 'day off', bad);
    }
  });

  test('invalid dates get an error that says why', T, async (t) => {
    const ask = await workday(t);
    for (const bad of ['13-01-2019', '00-10-2019']) {
      await assert.rejects(ask(bad), (e) => /month/i.test(e.message), bad);
    }
    for (const bad of ['hello', '2019-06-24', '6-24-2019', '06/24/2019', '', '06-24-2019x']) {
      await assert.rejects(ask(bad), (e) => /mm-dd-yyyy|format/i.test(e.message), JSON.stringify(bad));
    }
  });
});
