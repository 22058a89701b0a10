// The contract suite on a real PostgreSQL server: a throw-away cluster started for this test file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directoryContract } from './contract.js';
import { LATEST } from './migrations.js';
import { openDirectory } from './open.js';
import { startCluster, type Cluster } from './pgcluster.js';

let cluster: Cluster | null = null;
let reason = '';
const base = mkdtempSync(join(tmpdir(), 'quail-dir-pg-'));

before(async () => {
  try {
    cluster = await startCluster();
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
    process.stderr.write(`directory postgres tests: cannot start PostgreSQL: ${reason}\n`);
  }
});
after(() => {
  cluster?.stop();
  rmSync(base, { recursive: true, force: true });
});

/** Without a cluster every test fails with the reason: CI must never pass by skipping PostgreSQL. */
function need(): Cluster {
  if (!cluster) assert.fail(`PostgreSQL is required for the directory contract suite: ${reason}`);
  return cluster;
}

directoryContract('postgres', async () => openDirectory({ root: mkdtempSync(join(base, 'r-')), url: await need().newDatabase() }));

void test('postgres: control/directory names the server; two processes opening at once migrate once', async () => {
  const url = await need().newDatabase();
  const root = mkdtempSync(join(base, 'ctl-'));
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(root, 'control'));
  writeFileSync(join(root, 'control', 'directory'), `${url}\n`);
  const [a, b] = await Promise.all([openDirectory({ root }), openDirectory({ root })]);
  try {
    assert.match(a.describe, /^postgres postgres:\/\/quail@127\.0\.0\.1:\d+\//);
    assert.equal(await a.schemaVersion(), LATEST);
    assert.equal(await b.schemaVersion(), LATEST);
    await a.addDomain({ name: 'example.com', account: { user: 'q', uid: 1, gid: 1 } });
    assert.equal((await b.getDomain('example.com'))?.name, 'example.com');
  } finally {
    await a.close();
    await b.close();
  }
});

void test('postgres: backupDirectory writes our rows as JSON; restoreDirectory loads them into SQLite and into PostgreSQL', async () => {
  const { backupDirectory, restoreDirectory, DIRECTORY_JSON } = await import('./backup.js');
  const { existsSync } = await import('node:fs');
  const url = await need().newDatabase();
  const root = mkdtempSync(join(base, 'bk-'));
  const src = await openDirectory({ root, url });
  try {
    await src.addDomain({ name: 'example.com', account: { user: 'q', uid: 1, gid: 1 }, limits: { quotaBytes: 5000 } });
    await src.addAliasDomain('example.net', 'example.com');
    await src.addMailbox({ domain: 'example.com', local: 'joe', passwordHash: '$6$x$y', quotaBytes: 100, quotaMessages: 3 });
    await src.addAlias('example.com', 'info', ['joe@example.com', '|cat']);
  } finally {
    await src.close();
  }
  const out = mkdtempSync(join(base, 'out-'));
  assert.deepEqual(await backupDirectory(root, out, url), { kind: 'postgres', file: DIRECTORY_JSON });
  const check = async (d: Awaited<ReturnType<typeof openDirectory>>): Promise<void> => {
    try {
      assert.equal((await d.getDomain('example.com'))?.limits.quotaBytes, 5000);
      assert.equal((await d.resolveDomain('example.net'))?.name, 'example.com');
      const m = await d.getMailbox('example.com', 'joe');
      assert.deepEqual([m?.passwordHash, m?.quotaBytes, m?.quotaMessages], ['$6$x$y', 100, 3]);
      assert.deepEqual((await d.getAlias('example.com', 'info'))?.targets, ['joe@example.com', '|cat']);
    } finally {
      await d.close();
    }
  };
  const sqliteRoot = mkdtempSync(join(base, 'to-sqlite-'));
  assert.equal(await restoreDirectory(sqliteRoot, out, undefined, false), 'sqlite');
  assert.equal(existsSync(join(sqliteRoot, 'directory.sqlite')), true);
  await check(await openDirectory({ root: sqliteRoot }));
  const url2 = await need().newDatabase();
  assert.equal(await restoreDirectory(mkdtempSync(join(base, 'to-pg-')), out, url2, false), 'postgres');
  await check(await openDirectory({ root, url: url2 }));
  await assert.rejects(restoreDirectory(root, out, url2, false), /already has domains: give --force/);
  assert.equal(await restoreDirectory(root, out, url2, true), 'postgres');
  await check(await openDirectory({ root, url: url2 }));
});
