// The directory bench on PostgreSQL: a throw-away cluster (src/directory/pgcluster.ts), the same data set, the same lookups and changes; or why not.
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { errText } from '../src/core/index.js';
import { openDirectory, type DeliveryAccount } from '../src/directory/index.js';
import { startCluster, type Cluster } from '../test/support/pgcluster.js';
import { loadPostgres, type PgBuilt } from './directory-load.js';
import { count, lookupRows, measureChanges, measureLookups, rate, secs, type Lookups } from './directory-measure.js';
import type { BenchContext, BenchRow } from './types.js';

export interface PgOptions {
  /** Mailboxes per data set, in order (10 per domain). */
  readonly sizes: readonly number[];
  /** Lookups per case at most, and the time budget per case. */
  readonly lookupMax: number;
  readonly lookupBudgetMs: number;
  /** Per data set: no batch is started after this long, and the rest of the set is measured at the size loaded. */
  readonly loadBudgetMs: number;
  /** Domains per INSERT (the loader's default: 10,000). */
  readonly batchDomains?: number;
  /** How to get a cluster; default startCluster({ fsync: true }). A throw means "skipped, because". */
  readonly start?: () => Promise<Cluster>;
}

export interface PgSize {
  readonly built: PgBuilt;
  readonly lookups: Lookups;
  readonly changes: readonly BenchRow[];
}

export interface PgResult {
  /** Why there are no PostgreSQL rows (no cluster could be started). */
  readonly skipped?: string;
  /** Server version and the settings that matter here. */
  readonly server: string;
  readonly sizes: readonly PgSize[];
  /** `SELECT 1` through a pg pool like the directory's, one at a time: the floor under every lookup (after the first size). */
  readonly roundTrip?: { readonly done: number; readonly perSecond: number };
  /** Why the sizes after the last one reported were not measured. */
  readonly failed?: string;
}

async function describeServer(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const show = async (name: string): Promise<string> =>
      (await c.query<Record<string, string>>(`SHOW ${name}`)).rows[0]?.[name] ?? '?';
    return `PostgreSQL ${await show('server_version')} (shared_buffers ${await show('shared_buffers')}, fsync ${await show('fsync')})`;
  } finally {
    await c.end();
  }
}

/** `SELECT 1` one at a time through a pool made as the directory's PgDriver makes it (max 4 clients). */
async function roundTrips(url: string, max: number, budgetMs: number): Promise<{ done: number; perSecond: number }> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    return await rate(max, budgetMs, async () => void (await pool.query('SELECT 1')));
  } finally {
    await pool.end();
  }
}

/**
 * Starts a cluster (or returns why not, never throws for that), then per size: an empty database, the bulk load
 * (untimed), getMailbox and the RCPT-check lookups through openDirectory(postgres://…, readonly), and the
 * createDomain/removeDomain/createMailbox changes with the qmail files of that many domains. Trouble after the
 * start ends the run with `failed` (the sizes done are kept); the cluster is always stopped, also on SIGINT/SIGTERM.
 */
export async function runDirectoryPostgres(ctx: BenchContext, o: PgOptions): Promise<PgResult> {
  const me = userInfo();
  const account: DeliveryAccount = { user: me.username, uid: me.uid, gid: me.gid };
  const t0 = process.hrtime.bigint();
  let cluster: Cluster;
  try {
    ctx.progress('directory: starting a PostgreSQL cluster');
    cluster = await (o.start ?? (() => startCluster({ fsync: true })))();
  } catch (err) {
    return { skipped: `no PostgreSQL cluster could be started: ${errText(err)}`, server: '', sizes: [] };
  }
  const onSignal = (): void => {
    cluster.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const sizes: PgSize[] = [];
  let server = '';
  let roundTrip: PgResult['roundTrip'];
  let failed: string | undefined;
  try {
    for (const requested of o.sizes) {
      const url = await cluster.newDatabase();
      if (server === '') server = await describeServer(url);
      ctx.progress(`directory: loading ${count(requested)} mailboxes into ${server}`);
      const built = await loadPostgres(join(ctx.workDir, `pg-m${requested}`), url, requested, account, ctx.progress, {
        budgetMs: o.loadBudgetMs,
        ...(o.batchDomains !== undefined ? { batchDomains: o.batchDomains } : {}),
      });
      ctx.progress(
        `directory: loaded ${count(built.mailboxes)} mailboxes in ${(built.rowsSeconds + built.filesSeconds).toFixed(1)} s; lookups`,
      );
      const dir = await openDirectory({ root: built.root, url, readonly: true });
      let lookups: Lookups;
      try {
        lookups = await measureLookups(dir, built, o.lookupMax, o.lookupBudgetMs);
      } finally {
        await dir.close();
      }
      if (lookups.misses > 0) throw new Error(`${lookups.misses} lookups of existing mailboxes failed on PostgreSQL`);
      roundTrip ??= await roundTrips(url, o.lookupMax, Math.min(o.lookupBudgetMs, 3000));
      ctx.progress(`directory: domain adds at ${count(built.domains)} domains, PostgreSQL`);
      const changes = await measureChanges(built, account, `at ${count(built.domains)} domains, PostgreSQL`, url);
      sizes.push({ built, lookups, changes });
    }
  } catch (err) {
    failed = errText(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    try {
      cluster.stop();
    } catch (err) {
      failed ??= `stopping the cluster: ${errText(err)}`;
    }
    ctx.progress(`directory: PostgreSQL part done in ${secs(t0).toFixed(1)} s (cluster start to stop)`);
  }
  return {
    server,
    sizes,
    ...(roundTrip !== undefined ? { roundTrip } : {}),
    ...(failed !== undefined ? { failed } : {}),
  };
}

/**
 * Per size: the load (setup, not a measurement), the two lookup rows, their ratio to SQLite's at the same size
 * (from `sqlite`, keyed by mailboxes) when the whole set was loaded, and the changes; then the round-trip floor;
 * or why PostgreSQL was skipped.
 */
export function postgresRows(r: PgResult, sqlite: ReadonlyMap<number, Lookups>): BenchRow[] {
  if (r.skipped !== undefined) return [{ name: 'PostgreSQL comparison skipped', value: 0, unit: '-', note: r.skipped }];
  const rows: BenchRow[] = [];
  for (const { built: b, lookups, changes } of r.sizes) {
    const label = `${count(b.mailboxes)} mailboxes, PostgreSQL`;
    const short =
      b.mailboxes < b.requested
        ? `; LOAD BUDGET RAN OUT: ${count(b.mailboxes)} of ${count(b.requested)} mailboxes loaded, the rows below are at ${count(b.mailboxes)}`
        : '';
    rows.push({
      name: `load ${count(b.mailboxes)} mailboxes in ${count(b.domains)} domains into PostgreSQL (bench bulk loader, setup)`,
      value: b.rowsSeconds + b.filesSeconds,
      unit: 's',
      note:
        `rows ${b.rowsSeconds.toFixed(1)} s (INSERT … SELECT FROM unnest(arrays), ${count(b.batchDomains)} domains per statement, ` +
        `one precomputed scrypt hash, synchronous_commit off, then ANALYZE; database ${(b.bytes / 1e6).toFixed(0)} MB), ` +
        `qmail files + newu + newmrh ${b.filesSeconds.toFixed(1)} s; ${r.server}${short}`,
    });
    rows.push(
      ...lookupRows(
        lookups,
        label,
        'openDirectory(postgres://127.0.0.1…, readonly): pg pool, one query per lookup over TCP, after the load',
      ),
    );
    const lite = b.mailboxes === b.requested ? sqlite.get(b.requested) : undefined;
    if (lite !== undefined) {
      rows.push(
        {
          name: `ratio PostgreSQL / SQLite, getMailbox, ${count(b.mailboxes)} mailboxes`,
          value: lookups.get.perSecond / lite.get.perSecond,
          unit: 'x',
          note: '>1: PostgreSQL faster; same data set and picks, same run',
        },
        {
          name: `ratio PostgreSQL / SQLite, resolveDomain + getMailbox + getAlias, ${count(b.mailboxes)} mailboxes`,
          value: lookups.rcpt.perSecond / lite.rcpt.perSecond,
          unit: 'x',
          note: 'same addresses, same run',
        },
        {
          name: `ratio PostgreSQL / SQLite, lookupAddress, ${count(b.mailboxes)} mailboxes`,
          value: lookups.address.perSecond / lite.address.perSecond,
          unit: 'x',
          note: 'same addresses, same run',
        },
      );
    }
    rows.push(...changes);
  }
  if (r.roundTrip !== undefined) {
    rows.push({
      name: 'PostgreSQL round trip: SELECT 1 through a pg pool (max 4), one at a time',
      value: r.roundTrip.perSecond,
      unit: 'queries/s',
      note: `${count(r.roundTrip.done)} queries; the floor under each lookup query above (getMailbox and lookupAddress are one query each; resolveDomain + getMailbox + getAlias four: domain, its alias domains, mailbox, alias)`,
    });
  }
  if (r.failed !== undefined) rows.push({ name: 'PostgreSQL comparison stopped', value: 0, unit: '-', note: r.failed });
  return rows;
}
