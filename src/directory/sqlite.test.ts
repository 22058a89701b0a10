// The contract suite on SQLite, plus SQLite's migration backup.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { directoryContract } from './contract.js';
import { officesContract } from './offices-contract.js';
import { MIGRATIONS, LATEST } from './migrations.js';
import { openDirectory, SQLITE_FILE } from './open.js';
import { SqliteDriver } from './sql.js';
import { holdSqliteLock } from '../../test/support/sqlite-lock.js';

const base = mkdtempSync(join(tmpdir(), 'quail-dir-sqlite-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
/** A statement's wait for another process's lock, without a deadline that a loaded machine could reach. */
const FOREVER = 24 * 3600_000;

directoryContract('sqlite', () => {
  const root = join(base, `r${++n}`);
  return openDirectory({ root: mkdtempSync(`${root}-`) });
});
officesContract('sqlite', () => openDirectory({ root: mkdtempSync(join(base, `o${++n}-`)) }));

void test('sqlite: an old schema is backed up, then migrated, keeping its rows', async () => {
  const root = mkdtempSync(join(base, 'migrate-'));
  const file = join(root, SQLITE_FILE);
  // A directory written by version 1 of the schema.
  const db = new Database(file);
  db.exec('CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)');
  for (const s of MIGRATIONS[0]?.sql ?? []) db.exec(s);
  db.prepare('INSERT INTO schema_migrations VALUES (1, 0)').run();
  db.prepare(
    `INSERT INTO domains (name, policy, account, uid, gid, created) VALUES ('example.com', 'delete', 'quail', 1, 2, 0)`,
  ).run();
  db.prepare(`INSERT INTO mailboxes (domain, local, password, created) VALUES ('example.com', 'joe', '', 0)`).run();
  db.close();

  const dir = await openDirectory({ root, now: () => 1234 });
  try {
    assert.equal(await dir.schemaVersion(), LATEST);
    const m = await dir.getMailbox('example.com', 'joe');
    assert.deepEqual([m?.forward, m?.keepCopy], [[], false]);
    assert.deepEqual((await dir.getDomain('example.com'))?.policy, { kind: 'delete' });
  } finally {
    await dir.close();
  }
  const backups = readdirSync(root).filter((f) => f.endsWith('.bak'));
  assert.deepEqual(backups, [`${SQLITE_FILE}.v1-1234.bak`]);
  const old = new Database(join(root, backups[0] ?? ''), { readonly: true });
  assert.deepEqual(old.prepare('SELECT MAX(version) AS v FROM schema_migrations').get(), { v: 1 });
  old.close();

  // Opening again: nothing to migrate, no new backup.
  await (await openDirectory({ root })).close();
  assert.equal(readdirSync(root).filter((f) => f.endsWith('.bak')).length, 1);
});

void test('sqlite: a migration missing below the highest recorded one is applied too (two branches, each with one)', async () => {
  const root = mkdtempSync(join(base, 'gap-'));
  const file = join(root, SQLITE_FILE);
  // A directory whose build had migrations 1 and 3 but not 2 (migration 3's held_domains table made too).
  const third = MIGRATIONS.find((m) => m.version === 3);
  assert.ok(third);
  const db = new Database(file);
  db.exec('CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)');
  for (const s of [...(MIGRATIONS[0]?.sql ?? []), ...third.sql]) db.exec(s);
  db.prepare('INSERT INTO schema_migrations VALUES (1, 0)').run();
  db.prepare('INSERT INTO schema_migrations VALUES (3, 0)').run();
  db.close();

  await (await openDirectory({ root, now: () => 99 })).close();
  const check = new Database(file, { readonly: true });
  const versions = check
    .prepare('SELECT version FROM schema_migrations ORDER BY version')
    .all()
    .map((r) => Number((r as { version: number }).version));
  const cols = check.prepare('PRAGMA table_info(mailboxes)').all() as { name: string }[];
  check.close();
  // Every version recorded once, and migration 2's column is there.
  assert.deepEqual(
    versions,
    [...new Set(MIGRATIONS.map((m) => m.version))].sort((a, b) => a - b),
  );
  assert.ok(
    cols.some((c) => c.name === 'forward'),
    'migration 2 was applied',
  );
  assert.ok(
    readdirSync(root).some((f) => f.endsWith('.v3-99.bak')),
    'the directory was backed up before the gap was filled',
  );
});

void test('sqlite driver: a statement is compiled once per text, and still right after the schema changes', async () => {
  const d = SqliteDriver.open(join(mkdtempSync(join(base, 'stmt-')), 'x.sqlite'));
  let compiled = 0;
  const prepare = d.db.prepare.bind(d.db);
  d.db.prepare = (sql: string) => {
    compiled++;
    return prepare(sql);
  };
  await d.run('CREATE TABLE t (a TEXT)');
  for (const a of ['x', 'y', 'z']) await d.run('INSERT INTO t (a) VALUES (?)', [a]);
  for (let i = 0; i < 3; i++) assert.deepEqual(await d.all('SELECT * FROM t WHERE a = ?', ['y']), [{ a: 'y' }]);
  assert.equal(compiled, 3, 'CREATE, INSERT and SELECT: each compiled once');
  // another process (a newer quail's migration) adds a column: the kept SELECT * sees it
  new Database(join(d.db.name)).exec("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'new'");
  assert.deepEqual(await d.all('SELECT * FROM t WHERE a = ?', ['z']), [{ a: 'z', b: 'new' }]);
  await d.transaction(async (tx) => {
    await tx.run('UPDATE t SET b = ? WHERE a = ?', ['tx', 'x']);
    assert.deepEqual(await tx.all('SELECT * FROM t WHERE a = ?', ['x']), [{ a: 'x', b: 'tx' }]);
  });
  await d.close();
});

void test('sqlite: statements waiting for another process to unlock leave the event loop free, then run', async () => {
  const root = mkdtempSync(join(base, 'busy-'));
  const file = join(root, SQLITE_FILE);
  // No deadline here: the statements wait for the release however long a loaded machine takes to deliver it (with the
  // 5 s default, a slow lock holder made them give up: not what this test is about).
  const rw = SqliteDriver.open(file, false, FOREVER);
  await rw.run('CREATE TABLE t (x INTEGER)');
  await rw.run('INSERT INTO t VALUES (1)');
  const ro = SqliteDriver.open(file, true, FOREVER);
  // SQLite's own busy wait sleeps in this thread (the event loop with it): it must stay a few milliseconds, so that
  // the waiting is the driver's, between tries, with the event loop free.
  for (const d of [rw, ro]) assert.ok(Number(d.db.pragma('busy_timeout', { simple: true })) <= 50, 'busy_timeout');
  const lock = await holdSqliteLock(file);
  try {
    let settled = 0;
    const read = ro.all('SELECT x FROM t').finally(() => void settled++);
    const write = rw.transaction((tx) => tx.run('INSERT INTO t VALUES (2)')).finally(() => void settled++);
    // While both wait for the lock, this process goes on: ten timer turns pass, and neither has an answer yet
    // (a statement that gave up at once, without waiting, would have settled).
    let turns = 0;
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (++turns < 10) return;
        clearInterval(t);
        resolve();
      }, 10);
    });
    assert.equal(settled, 0, 'the statements wait for the lock');
    await lock.release();
    assert.deepEqual(await read, [{ x: 1 }]);
    assert.equal(await write, 1);
    assert.deepEqual(await ro.all('SELECT x FROM t ORDER BY x'), [{ x: 1 }, { x: 2 }]);
  } finally {
    lock.kill();
    await ro.close();
    await rw.close();
  }
});
