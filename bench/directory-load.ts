// Bench-only bulk loaders: a directory of N mailboxes (10 per domain) in SQLite or PostgreSQL, with qmail's files for every domain, fast.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { hashPassword, openDirectory, SQLITE_FILE, type DeliveryAccount } from '../src/directory/index.js';
import { newmrh, newu } from '../src/users/index.js';

/** Mailboxes per domain: 1,000,000 mailboxes are 100,000 domains. */
export const PER_DOMAIN = 10;
/** What control/rcpthostsmax defaults to: the first 50 entries in rcpthosts, the rest in morercpthosts. */
const RCPTHOSTS_MAX = 50;
export const ME = 'bench.test';

export const domainOf = (i: number): string => `d${String(i).padStart(7, '0')}.bench.test`;
export const localOf = (j: number): string => `u${j}`;

export interface Built {
  readonly root: string;
  readonly domains: number;
  readonly mailboxes: number;
  readonly rowsSeconds: number;
  readonly filesSeconds: number;
  /** The SQLite file's size, or PostgreSQL's pg_database_size. */
  readonly bytes: number;
}

/** The root's skeleton: control/me, users/, domains/. */
function skeleton(root: string): void {
  mkdirSync(join(root, 'control'), { recursive: true });
  mkdirSync(join(root, 'users'), { recursive: true });
  mkdirSync(join(root, 'domains'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), `${ME}\n`);
}

/**
 * Writes the rows straight into the directory's SQLite file (made and migrated by openDirectory first) in big
 * transactions with synchronous=OFF, every mailbox with the same precomputed scrypt hash (one scrypt per mailbox
 * would take hours), then qmail's files for every domain in the format the directory's sync writes
 * (rcpthosts + morercpthosts past 50 entries, virtualdomains, users/assign), compiled by newu and newmrh.
 * No domain or mailbox directories are made: the caller makes the few it delivers to.
 */
export async function buildDirectory(
  root: string,
  mailboxes: number,
  account: DeliveryAccount,
  progress: (t: string) => void,
): Promise<Built> {
  const domains = Math.max(1, Math.ceil(mailboxes / PER_DOMAIN));
  skeleton(root);
  await (await openDirectory({ root })).close();
  const hash = await hashPassword('bench-password');
  const t0 = process.hrtime.bigint();
  insertRows(root, mailboxes, account, hash, progress);
  const t1 = process.hrtime.bigint();
  writeQmailFiles(root, domains, account);
  const t2 = process.hrtime.bigint();
  return {
    root,
    domains,
    mailboxes,
    rowsSeconds: Number(t1 - t0) / 1e9,
    filesSeconds: Number(t2 - t1) / 1e9,
    bytes: statSync(join(root, SQLITE_FILE)).size,
  };
}

/**
 * `mailboxes` more mailboxes (domains d0000000… of 10 each, as buildDirectory makes them) in the SQLite directory of
 * a root `quail init` made and that already serves some domains: their rows, then their lines added to rcpthosts
 * (up to 50 entries) or morercpthosts, virtualdomains and users/assign, compiled by newu and newmrh. The side-by-side
 * bench's directory variant at scale (QUAIL_BENCH_MAILBOXES): its load goes to the domains it made itself.
 */
export async function addToDirectory(
  root: string,
  mailboxes: number,
  account: DeliveryAccount,
  progress: (t: string) => void,
): Promise<void> {
  insertRows(root, mailboxes, account, await hashPassword('bench-password'), progress);
  writeQmailFiles(root, Math.max(1, Math.ceil(mailboxes / PER_DOMAIN)), account, true);
}

/**
 * Writes the rows straight into the directory's SQLite file (made and migrated by openDirectory first) in big
 * transactions with synchronous=OFF, every mailbox with the same precomputed scrypt hash `hash` (one scrypt per
 * mailbox would take hours).
 */
function insertRows(
  root: string,
  mailboxes: number,
  account: DeliveryAccount,
  hash: string,
  progress: (t: string) => void,
): void {
  const domains = Math.max(1, Math.ceil(mailboxes / PER_DOMAIN));
  const db = new Database(join(root, SQLITE_FILE));
  try {
    db.pragma('synchronous = OFF');
    db.pragma('journal_mode = MEMORY');
    const dom = db.prepare(
      `INSERT INTO domains (name, policy, policy_target, account, uid, gid, created) VALUES (?, 'bounce-no-mailbox', '', ?, ?, ?, ?)`,
    );
    const box = db.prepare(
      `INSERT INTO mailboxes (domain, local, password, real_name, flags, created) VALUES (?, ?, ?, '', 0, ?)`,
    );
    const now = Date.now();
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const d = domainOf(i);
        dom.run(d, account.user, account.uid, account.gid, now);
        for (let j = 0; j < PER_DOMAIN && i * PER_DOMAIN + j < mailboxes; j++) box.run(d, localOf(j), hash, now);
      }
    });
    const step = 10_000;
    for (let i = 0; i < domains; i += step) {
      batch(i, Math.min(domains, i + step));
      if ((i / step) % 5 === 4) progress(`directory: ${Math.min(domains, i + step) * PER_DOMAIN} mailboxes written`);
    }
  } finally {
    db.close();
  }
}

/**
 * qmail's files for domains 0..domains-1 in the format the directory's sync writes them: rcpthosts (me + the
 * first 49), morercpthosts (the rest), virtualdomains, users/assign; then newu and newmrh compile the cdb files.
 * `add`: after what the files already hold (rcpthosts filled up to 50 entries first, assign's "." kept last).
 */
function writeQmailFiles(root: string, domains: number, account: DeliveryAccount, add = false): void {
  const read = (path: string): string => (add && existsSync(path) ? readFileSync(path, 'latin1') : '');
  const lines = (text: string): string[] =>
    text
      .split('\n')
      .filter((l) => l !== '' && l !== '.')
      .map((l) => `${l}\n`);
  const rcptPath = join(root, 'control', 'rcpthosts');
  const morePath = join(root, 'control', 'morercpthosts');
  const vdPath = join(root, 'control', 'virtualdomains');
  const assignPath = join(root, 'users', 'assign');
  const rcpt: string[] = add ? lines(read(rcptPath)) : [`${ME}\n`];
  const more: string[] = lines(read(morePath));
  const vd: string[] = lines(read(vdPath));
  const assign: string[] = lines(read(assignPath));
  for (let i = 0; i < domains; i++) {
    const d = domainOf(i);
    (rcpt.length < RCPTHOSTS_MAX ? rcpt : more).push(`${d}\n`);
    vd.push(`${d}:${d}\n`);
    assign.push(`+${d}-:${account.user}:${account.uid}:${account.gid}:${root}/domains/${d}:-::\n`);
  }
  writeFileSync(rcptPath, rcpt.join(''));
  writeFileSync(morePath, more.join(''));
  writeFileSync(vdPath, vd.join(''));
  writeFileSync(assignPath, `${assign.join('')}.\n`);
  newu(root);
  newmrh(root);
}

export interface PgLoadOptions {
  /** Once the load has taken this long, no further batch is started: the directory holds what was loaded. */
  readonly budgetMs: number;
  /** Domains per INSERT statement (default 10,000: 100,000 mailboxes). */
  readonly batchDomains?: number;
}

export interface PgBuilt extends Built {
  readonly url: string;
  /** Mailboxes asked for; `mailboxes` is what was loaded (less when the budget ran out). */
  readonly requested: number;
  readonly batchDomains: number;
}

/**
 * The same data set in PostgreSQL at URL (an empty database): openDirectory makes the schema, then one
 * connection of the `pg` driver sends each batch of domains as two INSERT … SELECT FROM unnest($1::text[], …)
 * statements (one row per array element, one round trip per table per batch) in one transaction, every
 * mailbox with the same precomputed scrypt hash; then ANALYZE, a count of both tables against what was sent,
 * and qmail's files for the domains loaded.
 */
export async function loadPostgres(
  root: string,
  url: string,
  requested: number,
  account: DeliveryAccount,
  progress: (t: string) => void,
  opts: PgLoadOptions,
): Promise<PgBuilt> {
  const wanted = Math.max(1, Math.ceil(requested / PER_DOMAIN));
  const step = Math.max(1, opts.batchDomains ?? 10_000);
  skeleton(root);
  await (await openDirectory({ root, url })).close();
  const hash = await hashPassword('bench-password');

  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + opts.budgetMs;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let domains = 0;
  let mailboxes = 0;
  let bytes = 0;
  try {
    // Only the bench's load: a crash may lose the last batches, which nobody would keep anyway.
    await client.query('SET synchronous_commit = off');
    const now = Date.now();
    while (domains < wanted && (domains === 0 || Date.now() < deadline)) {
      const to = Math.min(wanted, domains + step);
      const names: string[] = [];
      const boxDomains: string[] = [];
      const boxLocals: string[] = [];
      for (let i = domains; i < to; i++) {
        const d = domainOf(i);
        names.push(d);
        for (let j = 0; j < PER_DOMAIN && i * PER_DOMAIN + j < requested; j++) {
          boxDomains.push(d);
          boxLocals.push(localOf(j));
        }
      }
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO domains (name, policy, policy_target, account, uid, gid, created)
         SELECT n, 'bounce-no-mailbox', '', $2, $3, $4, $5 FROM unnest($1::text[]) AS t(n)`,
        [names, account.user, account.uid, account.gid, now],
      );
      await client.query(
        `INSERT INTO mailboxes (domain, local, password, real_name, flags, created)
         SELECT d, l, $3, '', 0, $4 FROM unnest($1::text[], $2::text[]) AS t(d, l)`,
        [boxDomains, boxLocals, hash, now],
      );
      await client.query('COMMIT');
      domains = to;
      mailboxes += boxLocals.length;
      if ((domains / step) % 5 === 0)
        progress(`directory: ${mailboxes.toLocaleString('en-US')} mailboxes written to PostgreSQL`);
    }
    await client.query('ANALYZE domains');
    await client.query('ANALYZE mailboxes');
    const counted = await client.query<{ d: string; m: string; bytes: string }>(
      'SELECT (SELECT COUNT(*) FROM domains) AS d, (SELECT COUNT(*) FROM mailboxes) AS m, pg_database_size(current_database()) AS bytes',
    );
    const r = counted.rows[0];
    if (Number(r?.d) !== domains || Number(r?.m) !== mailboxes) {
      throw new Error(
        `PostgreSQL holds ${r?.d ?? '?'} domains and ${r?.m ?? '?'} mailboxes after loading ${domains} and ${mailboxes}`,
      );
    }
    bytes = Number(r?.bytes);
  } finally {
    await client.end();
  }
  const t1 = process.hrtime.bigint();
  writeQmailFiles(root, domains, account);
  const t2 = process.hrtime.bigint();
  return {
    root,
    url,
    requested,
    domains,
    mailboxes,
    batchDomains: step,
    bytes,
    rowsSeconds: Number(t1 - t0) / 1e9,
    filesSeconds: Number(t2 - t1) / 1e9,
  };
}
