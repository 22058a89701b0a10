// The two SQL drivers behind the directory: better-sqlite3 (serialised, sync under a Promise API) and pg (a pool).
import Database from 'better-sqlite3';
import pg from 'pg';

export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

/** What the directory needs from a database: `?` placeholders in both dialects. */
export interface SqlDriver {
  readonly dialect: 'sqlite' | 'postgres';
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs fn in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** One at a time: better-sqlite3 has one connection, so an async transaction must not interleave with others. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release = (): void => undefined;
    this.tail = new Promise<void>((r) => {
      release = r;
    });
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** How long a statement waits in all for another connection's lock before SQLITE_BUSY is the answer (by default). */
const BUSY_WAIT_MS = 5000;
/**
 * How long SQLite's own busy handler may wait. It sleeps in the calling thread, so the process's event loop sleeps with
 * it: every session of an SMTP or POP3 process, or all that root relays. So it covers only the few milliseconds of
 * another connection's commit; longer waits (a CLI's long transaction, an admin's `sqlite3` holding a lock) are the
 * driver's own, between tries, with the event loop free (docs/PERFORMANCE.md, twenty-fifth pass).
 */
const BUSY_SYNC_MS = 20;

function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && (err.code === 'SQLITE_BUSY' || err.code.startsWith('SQLITE_BUSY_'));
}

/** fn, tried again after a pause (2 ms, doubling to 100) while SQLite answers SQLITE_BUSY, for waitMs in all. */
async function whenFree<T>(fn: () => T, waitMs: number): Promise<T> {
  const until = Date.now() + waitMs;
  for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() + pause > until) throw err;
    }
    await new Promise((r) => setTimeout(r, pause));
  }
}

/** Prepared statements kept per SQLite connection, by SQL text; past this many distinct texts, the cache starts over. */
const MAX_STATEMENTS = 256;

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly mutex = new Mutex();
  /**
   * Each query's statement, compiled once: preparing it again for every RCPT check and every delivery was a tenth of
   * the SMTP process's CPU on the directory's path (docs/PERFORMANCE.md, tenth pass). SQLite recompiles a kept
   * statement itself when the schema changes.
   */
  private readonly statements = new Map<string, Database.Statement>();

  /** busyWaitMs: how long a statement waits in all for another connection's lock (the tests wait for their release). */
  constructor(
    readonly db: Database.Database,
    private readonly busyWaitMs = BUSY_WAIT_MS,
  ) {}

  /**
   * Rollback journal, not WAL: a WAL reader must be able to create `-shm` beside the file, and delivery workers
   * (the domain's account) read the directory without write access to the mail root. `readonly` is for them.
   */
  static open(file: string, readonly = false, busyWaitMs = BUSY_WAIT_MS): SqliteDriver {
    const db = readonly ? new Database(file, { readonly: true, fileMustExist: true }) : new Database(file);
    if (!readonly) db.pragma('journal_mode = DELETE');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_SYNC_MS}`);
    return new SqliteDriver(db, busyWaitMs);
  }

  private statement(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      if (this.statements.size >= MAX_STATEMENTS) this.statements.clear();
      this.statements.set(sql, st);
    }
    return st;
  }

  private inner(): SqlDriver {
    const self: SqlDriver = {
      dialect: 'sqlite',
      // A statement answered SQLITE_BUSY inside a transaction leaves it open: trying it again is safe.
      all: (sql, params = []) => whenFree(() => this.statement(sql).all(...params) as Row[], this.busyWaitMs),
      run: (sql, params = []) => whenFree(() => this.statement(sql).run(...params).changes, this.busyWaitMs),
      transaction: (fn) => fn(self),
      close: () => Promise.resolve(),
    };
    return self;
  }

  all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return this.mutex.lock(() => this.inner().all(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.mutex.lock(() => this.inner().run(sql, params));
  }

  /**
   * BEGIN IMMEDIATE takes the write lock before fn runs, so fn's statements seldom wait (a cache spill waits for
   * readers); COMMIT may wait for readers to finish, and a COMMIT answered SQLITE_BUSY leaves the transaction open to
   * be committed again.
   */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    return this.mutex.lock(async () => {
      await whenFree(() => this.db.exec('BEGIN IMMEDIATE'), this.busyWaitMs);
      try {
        const r = await fn(this.inner());
        await whenFree(() => this.db.exec('COMMIT'), this.busyWaitMs);
        return r;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  close(): Promise<void> {
    return this.mutex.lock(() => {
      this.db.close();
      return Promise.resolve();
    });
  }
}

/** `?` → `$1`, `$2`... (our SQL has no `?` inside string literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

interface Queryable {
  query(config: { text: string; values: unknown[]; name?: string }): Promise<{ rows: Row[]; rowCount: number | null }>;
}

/** Named (server-side prepared) statements by SQL text; past this many distinct texts, queries go unnamed. */
const MAX_PREPARED = 256;
const prepared = new Map<string, { name: string; text: string }>();

/**
 * The query config for `sql`: data statements (SELECT/INSERT/UPDATE/DELETE) get a name, so each connection parses
 * and plans them once and later runs skip the parse (a lookup is mostly a round trip; this saves the server's share).
 * DDL (migrations) and anything past MAX_PREPARED distinct texts stay unnamed.
 */
function statement(sql: string, params: readonly SqlValue[]): { text: string; values: unknown[]; name?: string } {
  const values = [...params];
  const known = prepared.get(sql);
  if (known !== undefined) return { ...known, values };
  if (!/^\s*(SELECT|INSERT|UPDATE|DELETE)\b/i.test(sql) || prepared.size >= MAX_PREPARED)
    return { text: numbered(sql), values };
  const s = { name: `quail_${prepared.size + 1}`, text: numbered(sql) };
  prepared.set(sql, s);
  return { ...s, values };
}

function pgOps(q: Queryable, tx: (fn: (t: SqlDriver) => Promise<unknown>) => Promise<unknown>): SqlDriver {
  return {
    dialect: 'postgres',
    all: async (sql, params = []) => (await q.query(statement(sql, params))).rows,
    run: async (sql, params = []) => (await q.query(statement(sql, params))).rowCount ?? 0,
    transaction: <T>(fn: (t: SqlDriver) => Promise<T>) => tx(fn) as Promise<T>,
    close: () => Promise.resolve(),
  };
}

export class PgDriver implements SqlDriver {
  readonly dialect = 'postgres' as const;
  private readonly ops: SqlDriver;

  constructor(
    private readonly pool: pg.Pool,
    private readonly url = '',
  ) {
    this.ops = pgOps(pool, (fn) => this.transaction(fn));
  }

  static open(url: string): PgDriver {
    // A server that does not answer is trouble after 5 s (a 451 or a deferral), not a session that hangs.
    const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000 });
    // An idle client's error (server restart) must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    return new PgDriver(pool, url);
  }

  /**
   * LISTEN on `channel` over a connection of its own (a pooled one would be handed to queries): `onNotify` per
   * notification, `onError` once when the connection is lost (the caller opens a new one later).
   */
  async listen(
    channel: string,
    onNotify: (payload: string) => void,
    onError: (err: Error) => void,
  ): Promise<{ close(): Promise<void> }> {
    const client = new pg.Client({ connectionString: this.url });
    let failed = false;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      onError(err);
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('the listening connection to PostgreSQL closed')));
    client.on('notification', (n) => onNotify(n.payload ?? ''));
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (err) {
      failed = true;
      await client.end().catch(() => undefined);
      throw err;
    }
    return {
      close: async () => {
        failed = true;
        await client.end().catch(() => undefined);
      },
    };
  }

  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    return this.ops.all(sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    return this.ops.run(sql, params);
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const inner: SqlDriver = pgOps(client, (f) => f(inner));
      const r = await fn(inner);
      await client.query('COMMIT');
      return r;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
