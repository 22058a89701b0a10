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
