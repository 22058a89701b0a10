// Backup and restore of the directory itself: SQLite via the online backup API, PostgreSQL as JSON rows of our tables.
import { copyFileSync, existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempError } from '../core/index.js';
import { LATEST, migrate } from './migrations.js';
import { DirectoryError } from './names.js';
import { locateDirectory, redact, shareWithDeliveryGroup } from './open.js';
import { PgDriver, SqliteDriver, type Row, type SqlDriver, type SqlValue } from './sql.js';

/** Our tables, parents first (inserted in this order, deleted in the reverse). */
const DIRECTORY_TABLES = [
  'domains',
  'alias_domains',
  'mailboxes',
  'aliases',
  'domain_admins',
  // held domains (migration 3)
  'held_domains',
  // offices (migration 4)
  'offices',
  // mailing lists (migration 6)
  'lists',
  'list_members',
  // mailbox moves (migration 7): the record only; its files are copies still at the old office
  'mailbox_moves',
  // a domain's list settings (migration 9)
  'list_domains',
] as const;
/** The schema version that made each table newer than the first (web sessions are not kept: they are logins). */
const SINCE: Readonly<Record<string, number>> = {
  held_domains: 3,
  offices: 4,
  domain_admins: 5,
  lists: 6,
  list_members: 6,
  mailbox_moves: 7,
  list_domains: 9,
};
const DIRECTORY_SQLITE = 'directory.sqlite';
export const DIRECTORY_JSON = 'directory.json';
export const ROWS_FORMAT = 'quail-directory-rows 1';

export interface DirectoryRows {
  readonly format: typeof ROWS_FORMAT;
  readonly schemaVersion: number;
  readonly tables: Record<string, Row[]>;
}

async function readRows(tx: SqlDriver): Promise<DirectoryRows> {
  const v = await tx.all('SELECT MAX(version) AS v FROM schema_migrations');
  const version = Number(v[0]?.['v'] ?? 0);
  const tables: Record<string, Row[]> = {};
  for (const t of DIRECTORY_TABLES) if (version >= (SINCE[t] ?? 1)) tables[t] = await tx.all(`SELECT * FROM ${t}`);
  return { format: ROWS_FORMAT, schemaVersion: version, tables };
}

/**
 * Writes a consistent copy of the root's directory into `outDir`: `directory.sqlite` (SQLite's backup API) or
 * `directory.json` (PostgreSQL: our tables' rows, read in one REPEATABLE READ transaction). null: no directory yet.
 */
export async function backupDirectory(
  root: string,
  outDir: string,
  url?: string,
): Promise<{ kind: 'sqlite' | 'postgres'; file: string } | null> {
  const loc = locateDirectory(root, url);
  if (loc.kind === 'sqlite') {
    if (!existsSync(loc.file)) return null;
    const d = SqliteDriver.open(loc.file, true);
    try {
      await d.db.backup(join(outDir, DIRECTORY_SQLITE));
    } catch (err) {
      throw tempError(`unable to copy the directory ${loc.file}: ${(err as Error).message}`, err);
    } finally {
      await d.close();
    }
    return { kind: 'sqlite', file: DIRECTORY_SQLITE };
  }
  const d = PgDriver.open(loc.url);
  try {
    const rows = await d.transaction(async (tx) => {
      await tx.run('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      return readRows(tx);
    });
    writeFileSync(join(outDir, DIRECTORY_JSON), JSON.stringify(rows));
  } catch (err) {
    throw tempError(`unable to read the directory ${redact(loc.url)}: ${(err as Error).message}`, err);
  } finally {
    await d.close();
  }
  return { kind: 'postgres', file: DIRECTORY_JSON };
}

function parseRows(text: string): DirectoryRows {
  const v = JSON.parse(text) as Partial<DirectoryRows>;
  if (
    v.format !== ROWS_FORMAT ||
    typeof v.schemaVersion !== 'number' ||
    typeof v.tables !== 'object' ||
    v.tables === null
  ) {
    throw new DirectoryError(`${DIRECTORY_JSON} in the archive is not "${ROWS_FORMAT}"`);
  }
  return v as DirectoryRows;
}

/** Replaces our tables' rows (one transaction); refuses a directory that has domains unless `force`. */
async function loadRows(d: SqlDriver, rows: DirectoryRows, force: boolean, where: string): Promise<void> {
  if (rows.schemaVersion > LATEST)
    throw new DirectoryError(
      `the archive's directory has schema ${rows.schemaVersion}; this quail knows ${LATEST}: restore with a newer quail`,
    );
  await migrate(d, () => Promise.resolve());
  await d.transaction(async (tx) => {
    const n = await tx.all('SELECT COUNT(*) AS n FROM domains');
    if (Number(n[0]?.['n'] ?? 0) > 0 && !force)
      throw new DirectoryError(`the directory ${where} already has domains: give --force to replace them`);
    for (const t of [...DIRECTORY_TABLES].reverse()) await tx.run(`DELETE FROM ${t}`);
    await tx.run('DELETE FROM web_sessions'); // a restored directory starts with nobody logged in to the web admin
    for (const t of DIRECTORY_TABLES) {
      for (const r of rows.tables[t] ?? []) {
        const cols = Object.keys(r);
        if (cols.some((c) => !/^[a-z_]+$/.test(c)))
          throw new DirectoryError(`bad column name in the archive's ${t} rows`);
        await tx.run(
          `INSERT INTO ${t} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`,
          cols.map((c) => r[c] as SqlValue),
        );
      }
    }
  });
}

/**
 * Puts the directory from `fromDir` (what backupDirectory wrote) where the root (its restored control/directory,
 * or `url`) says: SQLite → SQLite is a file copy; any other pair goes through the rows. Then migrates.
 */
export async function restoreDirectory(
  root: string,
  fromDir: string,
  url: string | undefined,
  force: boolean,
): Promise<'sqlite' | 'postgres' | null> {
  const loc = locateDirectory(root, url);
  const srcSqlite = join(fromDir, DIRECTORY_SQLITE);
  const srcJson = join(fromDir, DIRECTORY_JSON);
  if (!existsSync(srcSqlite) && !existsSync(srcJson)) return null;
  if (loc.kind === 'sqlite' && existsSync(srcSqlite)) {
    if (existsSync(loc.file) && !force) throw new DirectoryError(`${loc.file} exists: give --force to replace it`);
    copyFileSync(srcSqlite, `${loc.file}.restore`);
    // A leftover rollback journal would be "replayed" into the new file: it belongs to the old one.
    if (existsSync(`${loc.file}-journal`)) unlinkSync(`${loc.file}-journal`);
    renameSync(`${loc.file}.restore`, loc.file);
  }
  let rows: DirectoryRows | null = null;
  if (existsSync(srcJson)) rows = parseRows(readFileSync(srcJson, 'utf8'));
  else if (loc.kind === 'postgres') {
    const s = SqliteDriver.open(srcSqlite, true);
    try {
      rows = await readRows(s);
    } finally {
      await s.close();
    }
  }
  const d: SqlDriver = loc.kind === 'sqlite' ? SqliteDriver.open(loc.file) : PgDriver.open(loc.url);
  const where = loc.kind === 'sqlite' ? loc.file : redact(loc.url);
  try {
    if (rows) await loadRows(d, rows, force, where);
    else await migrate(d, () => Promise.resolve());
  } catch (err) {
    if (err instanceof DirectoryError) throw err;
    throw tempError(`unable to restore the directory ${where}: ${(err as Error).message}`, err);
  } finally {
    await d.close();
  }
  if (loc.kind === 'sqlite') shareWithDeliveryGroup(root, loc.file);
  return loc.kind;
}
