// Opening the directory: which backend (--directory URL, else control/directory, else SQLite in the root), then migrate.
import { join, isAbsolute, resolve } from 'node:path';
import { chmodSync, chownSync, existsSync } from 'node:fs';
import { QuailError, tempError } from '../core/index.js';
import { Control } from '../control/index.js';
import { systemPasswd } from '../users/index.js';
import { LATEST, migrate, pgBackupBeforeMigration } from './migrations.js';
import { DirectoryError } from './names.js';
import { PgDriver, SqliteDriver, type SqlDriver } from './sql.js';
import { SqlDirectory } from './store.js';
import type { Directory } from './types.js';

/** The default SQLite file, relative to the mail root. */
export const SQLITE_FILE = 'directory.sqlite';

export type DirectoryLocation =
  { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };

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
    throw new DirectoryError(
      `directory location ${JSON.stringify(spec)}: use postgres://user@host/db, sqlite:PATH or a file path`,
    );
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
  /**
   * For delivery workers running as a domain's account: no migration (the schema must already be current) and,
   * for SQLite, a read-only connection that needs no write access to the file or the mail root.
   */
  readonly readonly?: boolean;
}

/** A reader's check instead of migrating: the schema must be the one this code knows. */
async function schemaCurrent(driver: SqlDriver, where: string): Promise<void> {
  const rows = await driver.all('SELECT MAX(version) AS v FROM schema_migrations');
  const v = Number(rows[0]?.['v'] ?? 0);
  if (v !== LATEST)
    throw tempError(
      `the directory ${where} has schema ${v}, this quail needs ${LATEST}: run any quail directory command as root to migrate it`,
    );
}

/**
 * As root, FILE (the SQLite file, or control/directory with its URL) is made readable by control/quailuser's group (0640): delivery workers run as that
 * account and read mailboxes from it, like vpopmail's files owned by the vpopmail user.
 */
export function shareWithDeliveryGroup(root: string, file: string): void {
  if (process.getuid?.() !== 0) return;
  try {
    const name = new Control(root).single('quailuser').value;
    const e = name === null ? undefined : systemPasswd().byName(name);
    if (!e) return;
    for (const f of [file, `${file}-journal`]) {
      if (!existsSync(f)) continue;
      chownSync(f, 0, e.gid);
      chmodSync(f, 0o640);
    }
  } catch {
    // best effort: a worker that cannot read the file defers with the reason
  }
}

/** Opens (creating and migrating as needed) the directory. Connection trouble is temporary. */
export async function openDirectory(opts: OpenOptions): Promise<Directory> {
  const loc = locateDirectory(opts.root, opts.url);
  const now = opts.now ?? Date.now;
  if (loc.kind === 'sqlite') {
    let driver: SqliteDriver;
    try {
      driver = SqliteDriver.open(loc.file, opts.readonly === true);
    } catch (err) {
      throw tempError(`unable to open the directory ${loc.file}: ${(err as Error).message}`, err);
    }
    if (opts.readonly === true) {
      try {
        await schemaCurrent(driver, loc.file);
      } catch (err) {
        await driver.close();
        throw err instanceof QuailError
          ? err
          : tempError(`unable to read the directory ${loc.file}: ${(err as Error).message}`, err);
      }
      return new SqlDirectory(driver, `sqlite ${loc.file}`, now);
    }
    try {
      await migrate(
        driver,
        async (from) => {
          // A consistent copy of the whole database (WAL included) before its schema changes.
          await driver.db.backup(`${loc.file}.v${from}-${now()}.bak`);
        },
        now,
      );
    } catch (err) {
      await driver.close();
      throw tempError(`unable to migrate the directory ${loc.file}: ${(err as Error).message}`, err);
    }
    shareWithDeliveryGroup(opts.root, loc.file);
    return new SqlDirectory(driver, `sqlite ${loc.file}`, now);
  }
  const driver = PgDriver.open(loc.url);
  try {
    // Migrations run in one transaction, so a failure leaves the old schema intact; before they change an
    // existing schema, its tables are copied into a schema of their own (pgBackupBeforeMigration).
    if (opts.readonly === true) await schemaCurrent(driver, redact(loc.url));
    else await migrate(driver, async (from) => void (await pgBackupBeforeMigration(driver, from, now())), now);
  } catch (err) {
    await driver.close();
    throw tempError(`unable to open the directory ${redact(loc.url)}: ${(err as Error).message}`, err);
  }
  return new SqlDirectory(driver, `postgres ${redact(loc.url)}`, now);
}

/**
 * A directory opened at its first use and kept open, for a long-lived process. `get()` opens it (an open that fails is
 * forgotten, so the next get tries again); `drop()` closes and forgets it after trouble, so the next get opens a fresh
 * connection (a database restarted, a file replaced); `close()` at the end.
 */
export class KeptDirectory {
  private dir: Promise<Directory> | undefined;

  constructor(private readonly open: () => Promise<Directory>) {}

  /** Whether a directory is open or being opened (the next get will not open one). */
  get opened(): boolean {
    return this.dir !== undefined;
  }

  get(): Promise<Directory> {
    if (this.dir === undefined) {
      const p: Promise<Directory> = this.open().catch((err: unknown) => {
        if (this.dir === p) this.dir = undefined;
        throw err;
      });
      this.dir = p;
    }
    return this.dir;
  }

  async drop(): Promise<void> {
    const d = this.dir;
    this.dir = undefined;
    await d?.then((x) => x.close()).catch(() => undefined);
  }

  close(): Promise<void> {
    return this.drop();
  }
}
