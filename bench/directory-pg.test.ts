// The directory bench's PostgreSQL part works: with tiny data sets the cluster starts, the rows load, every mailbox is found, the rows are there and the cluster is gone after; without a cluster, one row says why.
// tier: system (needs PostgreSQL)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findPgBin } from '../test/support/pgcluster.js';
import { domainOf } from './directory-load.js';
import type { Lookups } from './directory-measure.js';
import { postgresRows, runDirectoryPostgres, type PgOptions, type PgResult } from './directory-pg.js';
import type { BenchContext } from './types.js';

const haveBinaries = findPgBin() !== null;
const LOOKUPS = 400;

function context(dir: string): BenchContext {
  return { workDir: dir, n: (d) => d, caseBudgetMs: 60_000, fsyncRate: 0, progress: () => undefined };
}

async function run(o: Partial<PgOptions> & Pick<PgOptions, 'sizes'>): Promise<PgResult> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-bench-dirpg-'));
  try {
    const r = await runDirectoryPostgres(context(dir), {
      lookupMax: LOOKUPS,
      lookupBudgetMs: 60_000,
      loadBudgetMs: 60_000,
      ...o,
    });
    // qmail's files were written for the domains loaded (read before the work directory goes).
    for (const s of r.sizes) {
      const vd = readFileSync(join(s.built.root, 'control', 'virtualdomains'), 'latin1');
      assert.ok(
        vd.includes(`${domainOf(s.built.domains - 1)}:`),
        `virtualdomains lacks the last domain loaded (${s.built.domains})`,
      );
      assert.ok(!vd.includes(`${domainOf(s.built.domains)}:`), 'virtualdomains has a domain that was not loaded');
    }
    return r;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Connecting to a database of the cluster fails: the cluster was stopped. */
async function gone(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await assert.rejects(c.connect(), `the cluster at ${url} still accepts connections`);
}

const fakeSqlite = (perSecond: number): Lookups => ({
  get: { done: 1, perSecond, distinct: 1 },
  rcpt: { done: 1, perSecond: perSecond / 2, distinct: 1 },
  address: { done: 1, perSecond, distinct: 1 },
  misses: 0,
});

void test(`directory bench, PostgreSQL: tiny data sets load, every mailbox is found, rows present${haveBinaries ? '' : ' (no PostgreSQL binaries: the skip row)'}`, async () => {
  const r = await run({ sizes: [20, 35] });
  if (!haveBinaries) {
    assert.match(r.skipped ?? '', /no PostgreSQL cluster could be started: PostgreSQL server binaries not found/);
    assert.deepEqual(
      postgresRows(r, new Map()).map((x) => x.name),
      ['PostgreSQL comparison skipped'],
    );
    return;
  }
  assert.equal(r.skipped, undefined, r.skipped);
  assert.equal(r.failed, undefined, r.failed);
  assert.match(r.server, /^PostgreSQL \d+\.\d+.*fsync on\)$/);
  assert.deepEqual(
    r.sizes.map((s) => [s.built.requested, s.built.mailboxes, s.built.domains]),
    [
      [20, 20, 2],
      [35, 35, 4],
    ],
  );
  for (const s of r.sizes) {
    const { get, rcpt, address, misses } = s.lookups;
    assert.equal(misses, 0);
    // LOOKUPS random picks over 20 or 35 mailboxes ask for each one: so every mailbox of the set was found.
    assert.deepEqual(
      [get.done, get.distinct, rcpt.done, rcpt.distinct, address.done, address.distinct],
      [LOOKUPS, s.built.mailboxes, LOOKUPS, s.built.mailboxes, LOOKUPS, s.built.mailboxes],
    );
    assert.ok(get.perSecond > 0 && rcpt.perSecond > 0 && address.perSecond > 0);
    await gone(s.built.url);
  }
  // The table: per size the load, the lookups, the ratios where SQLite has the same size, the changes.
  const rows = postgresRows(r, new Map([[20, fakeSqlite(1000)]]));
  const per = (m: number, d: number, ratio: boolean): string[] => [
    `load ${m} mailboxes in ${d} domains into PostgreSQL (bench bulk loader, setup)`,
    `getMailbox, random mailbox, ${m} mailboxes, PostgreSQL`,
    `resolveDomain + getMailbox + getAlias (single calls), ${m} mailboxes, PostgreSQL`,
    `lookupAddress (vdeliver / RCPT check), ${m} mailboxes, PostgreSQL`,
    ...(ratio
      ? [
          `ratio PostgreSQL / SQLite, getMailbox, ${m} mailboxes`,
          `ratio PostgreSQL / SQLite, resolveDomain + getMailbox + getAlias, ${m} mailboxes`,
          `ratio PostgreSQL / SQLite, lookupAddress, ${m} mailboxes`,
        ]
      : []),
    `createDomain (row + rcpthosts/morercpthosts(.cdb), virtualdomains, users/assign+cdb, .qmail-default), at ${d} domains, PostgreSQL`,
    `removeDomain (all files), at ${d} domains, PostgreSQL`,
    `createMailbox, no password (row + Maildir), at ${d} domains, PostgreSQL`,
    `createMailbox with a password, at ${d} domains, PostgreSQL`,
  ];
  assert.deepEqual(
    rows.map((x) => x.name),
    [
      ...per(20, 2, true),
      ...per(35, 4, false),
      'PostgreSQL round trip: SELECT 1 through a pg pool (max 4), one at a time',
    ],
  );
  const ratio = rows.find((x) => x.name === 'ratio PostgreSQL / SQLite, getMailbox, 20 mailboxes');
  assert.equal(ratio?.value, (r.sizes[0]?.lookups.get.perSecond ?? 0) / 1000);
  for (const x of rows) assert.ok(Number.isFinite(x.value) && x.value > 0, `${x.name}: ${x.value}`);
  assert.match(rows[1]?.note ?? '', new RegExp(`^${LOOKUPS} lookups \\(20 different mailboxes\\)`));
});

void test(
  'directory bench, PostgreSQL: a load that runs out of budget stops at a whole batch and says so',
  { skip: !haveBinaries && process.env['QUAIL_REQUIRE_TOOLS'] !== '1' && 'no PostgreSQL binaries' },
  async () => {
    const r = await run({ sizes: [35], batchDomains: 1, loadBudgetMs: 0 });
    assert.equal(r.failed, undefined, r.failed);
    assert.deepEqual(
      r.sizes.map((s) => [s.built.requested, s.built.mailboxes, s.built.domains, s.lookups.get.distinct]),
      [[35, 10, 1, 10]],
    );
    const rows = postgresRows(r, new Map([[35, fakeSqlite(1000)]]));
    assert.match(rows[0]?.note ?? '', /LOAD BUDGET RAN OUT: 10 of 35 mailboxes loaded, the rows below are at 10$/);
    assert.equal(rows.filter((x) => x.name.startsWith('ratio')).length, 0, 'no ratio against SQLite at another size');
    await gone(r.sizes[0]?.built.url ?? '');
  },
);

void test('directory bench, PostgreSQL: when no cluster starts, one row says why and nothing throws', async () => {
  const r = await run({ sizes: [20], start: () => Promise.reject(new Error('initdb: cannot be run here')) });
  assert.deepEqual(postgresRows(r, new Map()), [
    {
      name: 'PostgreSQL comparison skipped',
      value: 0,
      unit: '-',
      note: 'no PostgreSQL cluster could be started: initdb: cannot be run here',
    },
  ]);
});
