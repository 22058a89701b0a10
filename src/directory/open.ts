// Opening the directory: which backend (--directory URL, else control/directory, else SQLite in the root), then migrate.
import { join, isAbsolute, resolve } from 'node:path';
import { tempError } from '../address/index.js';
import { Control } from '../control/index.js';
import { migrate } from './migrations.js';
import { DirectoryError } from './names.js';
import { PgDriver, SqliteDriver } from './sql.js';
import { SqlDirectory } from './store.js';
import type { Directory } from './types.js';

/** The default SQLite file, relative to the mail root. */
export const SQLITE_FILE = 'directory.sqlite';

export type DirectoryLocation = { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };

/**
 * `postgres://...` / `postgresql://...` → PostgreSQL; `sqlite:PATH` or a path → SQLite (relative to the root);
 * nothing (no --directory, no control/directory) → SQLite at ROOT/directory.sqlite.
 */
export function locateDirectory(root: string, url?: string, control: Control = new Control(root)): DirectoryLocation {
  const spec = url ?? control.single('directory').value ?? '';
  if (/^postgres(ql)?:\/\//i.test(spec)) return { kind: 'postgres', url: spec };
  if (spec === '') return { kind: 'sqlite', file: join(root, SQLITE_FILE) };
  const path = spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : spec;
  if (path === '' || /^[a-z]+:\/\//i.test(path)) {
    throw new DirectoryError(`directory location ${JSON.stringify(spec)}: use postgres://user@host/db, sqlite:PATH or a file path`);
  }
  return { kind: 'sqlite', file: isAbsolute(path) ? path : resolve(root, path) };
}

/** The URL with any password replaced, for messages and `describe`. */
export function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:/@]*):[^@]*@/, '$1:***@');
}

export interface OpenOptions {
  readonly root: string;
  /** --directory: overrides control/directory. */
  readonly url?: string;
  readonly now?: () => number;
}

/** Opens (creating and migrating as needed) the directory. Connection trouble is temporary. */
export async function openDirectory(opts: OpenOptions): Promise<Directory> {
  const loc = locateDirectory(opts.root, opts.url);
  const now = opts.now ?? Date.now;
  if (loc.kind === 'sqlite') {
    let driver: SqliteDriver;
    try {
      driver = SqliteDriver.open(loc.file);
    } catch (err) {
      throw tempError(`unable to open the directory ${loc.file}: ${(err as Error).message}`, err);
    }
    try {
      await migrate(driver, async (from) => {
        // A consistent copy of the whole database (WAL included) before its schema changes.
        await driver.db.backup(`${loc.file}.v${from}-${now()}.bak`);
      }, now);
    } catch (err) {
      await driver.close();
      throw tempError(`unable to migrate the directory ${loc.file}: ${(err as Error).message}`, err);
    }
    return new SqlDirectory(driver, `sqlite ${loc.file}`, now);
  }
  const driver = PgDriver.open(loc.url);
  try {
    // PostgreSQL backups are the administrator's (pg_dump); migrations run in one transaction, so a failure
    // leaves the old schema intact.
    await migrate(driver, () => Promise.resolve(), now);
  } catch (err) {
    await driver.close();
    throw tempError(`unable to open the directory ${redact(loc.url)}: ${(err as Error).message}`, err);
  }
  return new SqlDirectory(driver, `postgres ${redact(loc.url)}`, now);
}
