// The Node.js that ctest runs the Node tests on (the system's, or the one .ci/setup installed into
// .ci/node when the system's is too old, as Debian 12's own 18 is) satisfies the "engines" of every
// test dependency pinned in package-lock.json. A dependency that needs a newer Node does not always
// say so loudly: playwright-core 1.65 refuses to load on 18 and every browser test fails with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = process.env.NEFFOS_ROOT || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

const parse = (v) => v.replace(/^v/, '').split('.').map((n) => (n === 'x' || n === '*' ? 0 : Number(n)));
const cmp = (a, b) => {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] || 0) - (b[i] || 0);
    if (d) return Math.sign(d);
  }
  return 0;
};

// One comparator of a semver range, in the forms npm packages use in "engines"; an unknown form
// throws, so that a range this test cannot read fails it instead of passing unread.
function comparatorHolds(c, have) {
  const m = /^(>=|<=|>|<|=|\^|~)?\s*v?(\d+(?:\.(?:\d+|x|\*))*)$/.exec(c);
  if (!m) throw new Error(`cannot read the range comparator "${c}"`);
  const [, op = '=', ver] = m;
  const want = parse(ver);
  const d = cmp(have, want);
  switch (op) {
    case '>=': return d >= 0;
    case '>': return d > 0;
    case '<=': return d <= 0;
    case '<': return d < 0;
    case '^': return d >= 0 && have[0] === want[0];
    case '~': return d >= 0 && have[0] === want[0] && have[1] === want[1];
    default: return ver.split('.').every((n, i) => n === 'x' || n === '*' || Number(n) === have[i]);
  }
}

const satisfies = (range, have) => range.split('||').some((alt) =>
  alt.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/).filter(Boolean)
    .every((c) => comparatorHolds(c, have)));

test('the Node.js of the tests satisfies the engines of every pinned test dependency', () => {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const have = parse(process.versions.node);
  const ranges = Object.entries(lock.packages).filter(([, p]) => p.engines && p.engines.node);
  assert.ok(ranges.length > 0, 'package-lock.json names the engines of its packages');
  for (const [name, p] of ranges) {
    assert.ok(satisfies(p.engines.node, have),
      `${name.replace(/^node_modules\//, '')} ${p.version} needs Node.js ${p.engines.node}; ` +
      `the tests run on ${process.execPath} ${process.version} (bash .ci/setup installs one into .ci/node)`);
  }
});

test('the range reader reads the forms it claims to', () => {
  const v = (s) => parse(s);
  assert.equal(satisfies('>=20', v('18.20.4')), false);
  assert.equal(satisfies('>=20', v('20.0.0')), true);
  assert.equal(satisfies('>=10.0.0', v('18.20.4')), true);
  assert.equal(satisfies('^18.17.0 || >=20.5.0', v('18.20.4')), true);
  assert.equal(satisfies('^18.17.0 || >=20.5.0', v('19.0.0')), false);
  assert.equal(satisfies('>= 14 < 21', v('22.1.0')), false);
  assert.equal(satisfies('20.x', v('20.3.1')), true);
  assert.throws(() => satisfies('node lts', v('20.0.0')), /cannot read/);
});
