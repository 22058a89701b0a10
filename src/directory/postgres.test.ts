// The contract suite on a real PostgreSQL server: a throw-away cluster started for this test file.
// tier: system (needs PostgreSQL)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { directoryContract } from './contract.js';
import { officesContract } from './offices-contract.js';
import { LATEST, MIGRATIONS } from './migrations.js';
import { openDirectory } from './open.js';
import { startCluster, type Cluster } from '../../test/support/pgcluster.js';
import { waitFor } from '../../test/support/wait.js';

let cluster: Cluster | null = null;
let reason = '';
const base = mkdtempSync(join(tmpdir(), 'quail-dir-pg-'));

before(async () => {
  try {
    cluster = await startCluster();
  } catch (err) {
    reason = errText(err);
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

directoryContract('postgres', async () =>
  openDirectory({ root: mkdtempSync(join(base, 'r-')), url: await need().newDatabase() }),
);
officesContract('postgres', async () =>
  openDirectory({ root: mkdtempSync(join(base, 'o-')), url: await need().newDatabase() }),
);

void test('postgres: a change to offices or mailboxes is announced (LISTEN/NOTIFY), a login time is not', async () => {
  const url = await need().newDatabase();
  const a = await openDirectory({ root: mkdtempSync(join(base, 'n-')), url });
  const b = await openDirectory({ root: mkdtempSync(join(base, 'n-')), url });
  const heard: string[] = [];
  const w = await b.watchChanges(
    (table) => heard.push(table),
    () => undefined,
  );
  try {
    assert.ok(w, 'PostgreSQL has notifications');
    await a.addOffice({ name: 'ny', host: '127.0.0.2' });
    await a.addDomain({ name: 'megacorp.example', account: { user: 'q', uid: 1, gid: 1 } });
    await a.addMailbox({ domain: 'megacorp.example', local: 'nick', passwordHash: '' });
    await a.updateMailbox('megacorp.example', 'nick', { lastLogin: new Date(5000) });
    await a.setMailboxOffice('megacorp.example', 'nick', 'ny');
    await a.addOffice({ name: 'atl', host: '127.0.0.3' });
    // Notifications arrive in commit order: once the last office is heard, everything before it was.
    await waitFor(() => heard.filter((t) => t === 'offices').length >= 2, 30_000, 'the second office to be heard');
    assert.deepEqual(heard, ['offices', 'domains', 'mailboxes', 'mailboxes', 'offices'], 'the login time woke nobody');
  } finally {
    await w?.close();
    await a.close();
    await b.close();
  }
});

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

void test('postgres: an old schema is copied into quail_backup_v1_<ms> before it is migrated, rows and all', async () => {
  const url = await need().newDatabase();
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: url });
  await client.connect();
  try {
    // A directory written by version 1 of the schema.
    await client.query('CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)');
    for (const s of MIGRATIONS[0]?.sql ?? []) await client.query(s);
    await client.query('INSERT INTO schema_migrations VALUES (1, 0)');
    await client.query(
      `INSERT INTO domains (name, policy, account, uid, gid, created) VALUES ('example.com', 'delete', 'quail', 1, 2, 0)`,
    );
    await client.query(
      `INSERT INTO mailboxes (domain, local, password, created) VALUES ('example.com', 'joe', 'x', 0)`,
    );
    const dir = await openDirectory({ root: mkdtempSync(join(base, 'mig-')), url, now: () => 1234 });
    try {
      assert.equal(await dir.schemaVersion(), LATEST);
      assert.deepEqual((await dir.getMailbox('example.com', 'joe'))?.forward, []);
    } finally {
      await dir.close();
    }
    const copy = await client.query('SELECT local, password FROM quail_backup_v1_1234.mailboxes');
    assert.deepEqual(copy.rows, [{ local: 'joe', password: 'x' }]);
    const v = await client.query<{ v: string }>('SELECT MAX(version) AS v FROM quail_backup_v1_1234.schema_migrations');
    assert.equal(Number(v.rows[0]?.v), 1);
    const cols = await client.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'quail_backup_v1_1234' AND table_name = 'mailboxes' AND column_name = 'forward'`,
    );
    assert.equal(cols.rows.length, 0, 'the copy is of the old schema');
    // Opening again: nothing to migrate, no second backup.
    await (await openDirectory({ root: mkdtempSync(join(base, 'mig-')), url })).close();
    const schemas = await client.query(
      `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'quail_backup%'`,
    );
    assert.deepEqual(
      schemas.rows.map((r: { schema_name: string }) => r.schema_name),
      ['quail_backup_v1_1234'],
    );
  } finally {
    await client.end();
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
    await src.addMailbox({
      domain: 'example.com',
      local: 'joe',
      passwordHash: '$6$x$y',
      quotaBytes: 100,
      quotaMessages: 3,
    });
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
