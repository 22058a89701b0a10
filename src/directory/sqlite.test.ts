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

const base = mkdtempSync(join(tmpdir(), 'quail-dir-sqlite-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

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
