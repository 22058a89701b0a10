// rcpthosts → morercpthosts (+ .cdb) past control/rcpthostsmax: placement, removal, drift, acceptance, routing, indexes.
// tier: system (needs cdb)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cdbEntries, cdbGet } from '../cdb/index.js';
import { Control, type ControlName } from '../control/index.js';
import { route, routeControlFrom } from '../route/index.js';
import { loadPolicy } from '../smtpd/index.js';
import { newmrh, newu } from '../users/index.js';
import { createDomain, removeDomain, addAliasDomain, type Ctx } from './admin.js';
import { editRcptHosts } from './files.js';
import { openDirectory, SQLITE_FILE } from './open.js';
import { ADDRESS_SQL } from './store.js';
import { checkDrift, repairDrift } from './sync.js';

const base = mkdtempSync(join(tmpdir(), 'quail-dir-rcpthosts-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

const account = { user: 'mail', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

async function fresh(
  max: number | null,
): Promise<Ctx & { control: () => Control; file: (name: ControlName) => string | null }> {
  const root = join(base, `r${++n}`);
  mkdirSync(join(root, 'control'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), 'mx.test\n');
  writeFileSync(join(root, 'control', 'rcpthosts'), 'mx.test\n');
  if (max !== null) writeFileSync(join(root, 'control', 'rcpthostsmax'), `${max}\n`);
  const dir = await openDirectory({ root });
  after(() => dir.close());
  const file = (name: ControlName): string | null => new Control(root).raw(name);
  return { root, dir, control: () => new Control(root), file };
}

const inCdb = (root: string, key: string): boolean => {
  const bytes = readFileSync(join(root, 'control', 'morercpthosts.cdb'));
  return cdbGet(bytes, Buffer.from(key, 'latin1')) !== undefined;
};

void test('editRcptHosts: golden table', () => {
  const rows: Array<[string | null, string | null, string[], string[], number, string | null, string | null]> = [
    // rcpt, more, add, remove, max → rcpthosts, morercpthosts
    ['a\n', null, ['b'], [], 50, 'a\nb\n', null],
    ['a\nb\n', null, ['c'], [], 2, null, 'c\n'],
    ['a\nb\n', 'c\n', ['d', 'e'], [], 2, null, 'c\nd\ne\n'],
    ['a\n', null, ['b', 'c'], [], 2, 'a\nb\n', 'c\n'],
    ['a\nb\n', 'c\n', ['C', 'B'], [], 2, null, null], // already present (case-insensitive): stays where it is
    ['a\nb\n', 'c\n', [], ['b', 'c'], 2, 'a\n', ''],
    ['a\nb\n', 'c\n', ['d'], ['b'], 2, 'a\nd\n', null], // the freed slot is used
    ['# comment\na\n', null, ['b'], [], 1, null, 'b\n'], // comments do not count
    [null, null, ['a'], [], 0, '', 'a\n'], // no rcpthosts would accept all: an empty one is made
    [null, null, ['a'], [], 5, 'a\n', null],
  ];
  for (const [rcpt, more, add, remove, max, wantR, wantM] of rows) {
    const got = editRcptHosts(rcpt, more, add, remove, max);
    assert.deepEqual(
      [got.rcpthosts, got.morercpthosts],
      [wantR, wantM],
      JSON.stringify([rcpt, more, add, remove, max]),
    );
  }
});

void test('createDomain: domain N+1 goes to morercpthosts and a qmail-format morercpthosts.cdb; removal from either file', async () => {
  const c = await fresh(3);
  await createDomain(c, { name: 'a.test', account });
  await createDomain(c, { name: 'b.test', account });
  assert.equal(c.file('rcpthosts'), 'mx.test\na.test\nb.test\n');
  assert.equal(c.file('morercpthosts'), null);
  await createDomain(c, { name: 'c.test', account });
  await createDomain(c, { name: 'D.Test', account });
  assert.equal(c.file('rcpthosts'), 'mx.test\na.test\nb.test\n');
  assert.equal(c.file('morercpthosts'), 'c.test\nd.test\n');
  // tinycdb reads it: `cdb -q` exits 0 for a key present, 100 for one absent
  const cdbFile = join(c.root, 'control', 'morercpthosts.cdb');
  assert.equal(spawnSync('cdb', ['-q', cdbFile, 'd.test']).status, 0);
  assert.equal(spawnSync('cdb', ['-q', cdbFile, 'a.test']).status, 100);
  // byte for byte what quail newmrh (qmail-newmrh) makes from the same morercpthosts
  const ours = readFileSync(cdbFile);
  copyFileSync(cdbFile, `${cdbFile}.ours`);
  newmrh(c.root);
  assert.deepEqual(readFileSync(cdbFile), ours);
  // virtualdomains and users/assign have every domain, wherever rcpthosts put it
  assert.match(c.file('virtualdomains') ?? '', /^d\.test:d\.test$/m);
  // an alias domain of a full rcpthosts goes to morercpthosts too
  await addAliasDomain(c, 'alias.test', 'a.test');
  assert.equal(c.file('morercpthosts'), 'c.test\nd.test\nalias.test\n');
  assert.ok(inCdb(c.root, 'alias.test'));

  await removeDomain(c, 'c.test', false);
  assert.equal(c.file('morercpthosts'), 'd.test\nalias.test\n');
  assert.equal(inCdb(c.root, 'c.test'), false);
  assert.ok(inCdb(c.root, 'd.test'));
  await removeDomain(c, 'b.test', false);
  assert.equal(c.file('rcpthosts'), 'mx.test\na.test\n');
  // the slot b.test freed is taken by the next domain
  await createDomain(c, { name: 'e.test', account });
  assert.equal(c.file('rcpthosts'), 'mx.test\na.test\ne.test\n');
  await removeDomain(c, 'a.test', false); // takes its alias domain alias.test (in morercpthosts) with it
  assert.equal(c.file('rcpthosts'), 'mx.test\ne.test\n');
  assert.equal(c.file('morercpthosts'), 'd.test\n');
  assert.deepEqual(
    [...cdbEntries(readFileSync(cdbFile))].map(([k]) => k.toString()),
    ['d.test'],
  );
  assert.deepEqual(await checkDrift(c.root, c.dir), []);
});

void test('the default rcpthostsmax is 50', async () => {
  const c = await fresh(null);
  for (let i = 0; i < 49; i++) await createDomain(c, { name: `d${i}.test`, account });
  assert.equal((c.file('rcpthosts') ?? '').split('\n').length - 1, 50); // mx.test + 49
  assert.equal(c.file('morercpthosts'), null);
  await createDomain(c, { name: 'd49.test', account });
  await createDomain(c, { name: 'd50.test', account });
  assert.equal(c.file('morercpthosts'), 'd49.test\nd50.test\n');
});

void test('checkDrift / repairDrift across rcpthosts, morercpthosts and morercpthosts.cdb', async () => {
  const c = await fresh(2);
  for (const d of ['a.test', 'b.test', 'c.test', 'd.test']) await createDomain(c, { name: d, account });
  assert.equal(c.file('rcpthosts'), 'mx.test\na.test\n');
  assert.equal(c.file('morercpthosts'), 'b.test\nc.test\nd.test\n');
  assert.deepEqual(await checkDrift(c.root, c.dir), []);
  const ctl = (f: string): string => join(c.root, 'control', f);

  // 1. morercpthosts.cdb is stale (an older morercpthosts was compiled)
  writeFileSync(ctl('morercpthosts'), 'b.test\n');
  newmrh(c.root);
  writeFileSync(ctl('morercpthosts'), 'b.test\nc.test\nd.test\n');
  let drift = await checkDrift(c.root, c.dir);
  assert.deepEqual(
    drift.map((d) => [d.path, d.problem]),
    [[ctl('morercpthosts.cdb'), 'does not match morercpthosts (c.test); run quail newmrh']],
  );
  await repairDrift(c.root, c.dir);
  assert.deepEqual(await checkDrift(c.root, c.dir), []);
  assert.ok(inCdb(c.root, 'd.test'));

  // 2. a restore lost c.test from morercpthosts and a.test from rcpthosts (and the cdb agrees with the loss)
  writeFileSync(ctl('morercpthosts'), 'b.test\nd.test\n');
  writeFileSync(ctl('rcpthosts'), 'mx.test\n');
  newmrh(c.root);
  drift = await checkDrift(c.root, c.dir);
  assert.deepEqual(
    drift.map((d) => [d.domain, d.problem]),
    [
      ['a.test', 'a.test is missing (from rcpthosts and morercpthosts)'],
      ['c.test', 'c.test is missing (from rcpthosts and morercpthosts)'],
    ],
  );
  await repairDrift(c.root, c.dir);
  assert.deepEqual(await checkDrift(c.root, c.dir), []);
  assert.equal(c.file('rcpthosts'), 'mx.test\na.test\n'); // one slot free: the first missing name takes it
  assert.equal(c.file('morercpthosts'), 'b.test\nd.test\nc.test\n');
  assert.ok(inCdb(c.root, 'c.test'));

  // 3. morercpthosts.cdb deleted; a stale managed domain left in morercpthosts
  rmSync(ctl('morercpthosts.cdb'));
  drift = await checkDrift(c.root, c.dir);
  assert.deepEqual(
    drift.map((d) => d.path),
    [ctl('morercpthosts.cdb')],
  );
  await c.dir.deleteDomain('d.test'); // behind the files' back
  drift = await checkDrift(c.root, c.dir);
  assert.ok(
    drift.some((d) => d.domain === 'd.test' && /not in the directory/.test(d.problem)),
    JSON.stringify(drift),
  );
  await repairDrift(c.root, c.dir);
  assert.deepEqual(await checkDrift(c.root, c.dir), []);
  assert.equal(c.file('morercpthosts'), 'b.test\nc.test\n');
  assert.equal(inCdb(c.root, 'd.test'), false);

  // 4. users/cdb stale for one domain (users/assign right)
  const assign = readFileSync(join(c.root, 'users', 'assign'), 'latin1');
  writeFileSync(join(c.root, 'users', 'assign'), assign.replace(/^\+b\.test-:.*\n/m, ''));
  newu(c.root);
  writeFileSync(join(c.root, 'users', 'assign'), assign);
  drift = await checkDrift(c.root, c.dir);
  assert.deepEqual(
    drift.map((d) => [d.domain, d.problem]),
    [['b.test', 'out of date for b.test (run newu)']],
  );
  await repairDrift(c.root, c.dir);
  assert.deepEqual(await checkDrift(c.root, c.dir), []);
});

void test('a domain only in morercpthosts: smtpd accepts RCPT to it, the scheduler routes it to the domain', async () => {
  const c = await fresh(1);
  await createDomain(c, { name: 'only-more.test', account });
  assert.equal(c.file('rcpthosts'), 'mx.test\n');
  assert.equal(c.file('morercpthosts'), 'only-more.test\n');
  const p = loadPolicy(new Control(c.root), {}, () => false);
  assert.ok(p.ok);
  assert.equal(p.policy.rcptAllowed('joe@only-more.test'), true);
  assert.equal(p.policy.rcptAllowed('joe@ONLY-MORE.test'), true);
  assert.equal(p.policy.rcptAllowed('joe@elsewhere.test'), false);
  const r = route('joe@only-more.test', routeControlFrom(new Control(c.root)));
  assert.deepEqual([r.channel, r.address], ['local', 'only-more.test-joe@only-more.test']);
});

void test('lookups are index searches: EXPLAIN QUERY PLAN of the statements vdeliver and the RCPT check run', async () => {
  const c = await fresh(null);
  await c.dir.close();
  const db = new Database(join(c.root, SQLITE_FILE), { readonly: true });
  try {
    const statements = [
      'SELECT * FROM domains WHERE name = ?', // getDomain / resolveDomain
      'SELECT domain FROM alias_domains WHERE alias = ?', // resolveDomain of an alias domain
      'SELECT alias FROM alias_domains WHERE domain = ? ORDER BY alias', // the domain's alias list
      'SELECT * FROM mailboxes WHERE domain = ? AND local = ?', // getMailbox
      'SELECT target FROM aliases WHERE domain = ? AND local = ? ORDER BY position', // getAlias
      ADDRESS_SQL, // lookupAddress: a delivery's domain, alias and mailboxes at once
    ];
    for (const sql of statements) {
      const params = Array.from({ length: sql.split('?').length - 1 }, () => 'x');
      const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
      const details = plan.map((r) => r.detail);
      assert.ok(
        details.some((d) => /^SEARCH \w+ USING (COVERING |PRIMARY )?(INDEX|KEY)/.test(d)),
        `${sql}: ${details.join('; ')}`,
      );
      assert.ok(!details.some((d) => d.startsWith('SCAN')), `${sql} scans: ${details.join('; ')}`);
    }
  } finally {
    db.close();
  }
});
