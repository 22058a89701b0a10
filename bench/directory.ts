// Section: the directory at 1,000 and at 1,000,000 mailboxes (QUAIL_BENCH_MAILBOXES): lookups, vdeliver, domain/mailbox add; then lookups and adds on PostgreSQL.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { Control } from '../src/control/index.js';
import { openDirectory, type DeliveryAccount, type Directory } from '../src/directory/index.js';
import { vdeliver } from '../src/vdeliver/index.js';
import { UniqueNamer } from '../src/maildir/index.js';
import { route, routeControlFrom } from '../src/route/index.js';
import { loadPolicy } from '../src/smtpd/index.js';
import { buildDirectory, domainOf, localOf, ME, PER_DOMAIN, type Built } from './directory-load.js';
import { count, lookupRows, measureChanges, measureLookups, picker, secs, type Lookups } from './directory-measure.js';
import { postgresRows, runDirectoryPostgres } from './directory-pg.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const SMALL = 1_000;
const DEFAULT_LARGE = 1_000_000;
/** Mailboxes that get a Maildir and receive the delivery case's messages. */
const TARGETS = 200;
const LOOKUP_MAX = 200_000;
const LOOKUP_BUDGET_MS = 8_000;
const SIZE = 4096;
/** Per PostgreSQL data set: the bulk load starts no batch after this long (1,000,000 mailboxes take ~10 s on the 2-core VM). */
const PG_LOAD_BUDGET_MS = 120_000;

function scale(): number {
  const v = process.env['QUAIL_BENCH_MAILBOXES'];
  if (v === undefined || v === '') return DEFAULT_LARGE;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`QUAIL_BENCH_MAILBOXES=${v} is not a whole number ≥ 1`);
  return n;
}

function message(): Buffer {
  let text = `From: bench@${ME}\nTo: someone@${ME}\nSubject: directory bench\n\n`;
  while (text.length < SIZE - 72) text += `${'x'.repeat(71)}\n`;
  return Buffer.from(text.padEnd(SIZE - 1, 'y') + '\n', 'latin1');
}

/** In-process vdeliver (what src/local's workers run for a `| quail vdeliver` line) into TARGETS Maildirs. */
async function deliveries(ctx: BenchContext, dir: Directory, b: Built, label: string): Promise<BenchRow[]> {
  const targets: Array<[string, string]> = [];
  const n = Math.min(TARGETS, b.mailboxes);
  for (let t = 0; t < n; t++) {
    const i = Math.floor((t * b.mailboxes) / n);
    const d = domainOf(Math.floor(i / PER_DOMAIN));
    const l = localOf(i % PER_DOMAIN);
    for (const s of ['cur', 'new', 'tmp'])
      mkdirSync(join(b.root, 'domains', d, l, 'Maildir', s), { recursive: true, mode: 0o700 });
    targets.push([d, l]);
  }
  const msg = join(b.root, 'bench-message');
  writeFileSync(msg, message());
  const namer = new UniqueNamer();
  const total = ctx.n(2000);
  const rows: BenchRow[] = [];
  let delivered = 0;
  for (const concurrency of [1, 10]) {
    ctx.progress(`directory: ${count(total)} in-process vdeliver calls, concurrency ${concurrency}, ${label}`);
    let next = 0;
    let failed = '';
    const t0 = process.hrtime.bigint();
    const deadline = Date.now() + ctx.caseBudgetMs;
    const worker = async (): Promise<void> => {
      while (next < total && Date.now() < deadline) {
        const [d, l] = targets[next++ % targets.length] ?? ['', ''];
        const r = await vdeliver({
          root: b.root,
          directory: dir,
          local: `${d}-${l}`,
          domain: d,
          ext: l,
          messagePath: msg,
          sender: `bench@${ME}`,
          dtline: `Delivered-To: ${d}-${l}@${d}\n`,
          rpline: `Return-Path: <bench@${ME}>\n`,
          namer,
        });
        if (r.result !== 'success') failed = r.report;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const s = secs(t0);
    if (failed !== '') throw new Error(`vdeliver: ${failed}`);
    const inMaildirs = targets.reduce(
      (a, [d, l]) => a + readdirSync(join(b.root, 'domains', d, l, 'Maildir', 'new')).length,
      0,
    );
    if (inMaildirs - delivered !== next)
      throw new Error(`${next} delivered but ${inMaildirs - delivered} new files in the Maildirs`);
    delivered = inMaildirs;
    rows.push({
      name: `vdeliver in-process → Maildir, concurrency ${concurrency}, ${label}`,
      value: next / s,
      unit: 'msg/s',
      note:
        `${count(next)} x 4 KiB to ${n} mailboxes (only these have Maildirs); directory lookup + Maildir write with fsync; ` +
        `no queue/scheduler; ${(next / s / ctx.fsyncRate).toFixed(2)}x the disk's fsync rate`,
    });
  }
  return rows;
}

/** What a message costs the other readers of the files: smtpd's per-session control load, the scheduler's routing. */
function readers(b: Built, label: string): BenchRow[] {
  const pick = picker(777);
  const N = 200;
  let t0 = process.hrtime.bigint();
  let ok = 0;
  for (let k = 0; k < N; k++) {
    const p = loadPolicy(new Control(b.root), {}, () => false);
    if (!p.ok) continue;
    if (p.policy.rcptAllowed(`u0@${domainOf(pick(b.domains))}`)) ok++;
    p.policy.close();
  }
  const session = (secs(t0) * 1000) / N;
  if (ok !== N) throw new Error(`smtpd refused ${N - ok} of ${N} recipients of directory domains`);
  t0 = process.hrtime.bigint();
  const rc = routeControlFrom(new Control(b.root));
  const hup = secs(t0) * 1000;
  t0 = process.hrtime.bigint();
  const R = 200_000;
  for (let k = 0; k < R; k++)
    if (route(`u1@${domainOf(pick(b.domains))}`, rc).channel !== 'local')
      throw new Error('a directory domain routed remote');
  const perRoute = R / secs(t0);
  return [
    {
      name: `smtpd session: control load + 1 RCPT check, ${label}`,
      value: session,
      unit: 'ms',
      note: `mean of ${N}; reads rcpthosts, opens morercpthosts.cdb and probes it (header, slot, record per candidate)`,
    },
    {
      name: `scheduler: virtualdomains read (start / SIGHUP), ${label}`,
      value: hup,
      unit: 'ms',
      note: `${count(b.domains)} lines`,
    },
    {
      name: `scheduler: route() one recipient, ${label}`,
      value: perRoute,
      unit: 'routes/s',
      note: 'map lookups per candidate, independent of the number of domains',
    },
  ];
}

/** One SQLite data set; its lookup figures go into `sqlite` for the PostgreSQL ratios. */
async function oneSize(ctx: BenchContext, mailboxes: number, sqlite: Map<number, Lookups>): Promise<BenchRow[]> {
  const me = userInfo();
  const account: DeliveryAccount = { user: me.username, uid: me.uid, gid: me.gid };
  const label = `${count(mailboxes)} mailboxes`;
  const root = join(ctx.workDir, `m${mailboxes}`);
  ctx.progress(
    `directory: building ${count(mailboxes)} mailboxes in ${count(Math.ceil(mailboxes / PER_DOMAIN))} domains`,
  );
  const b = await buildDirectory(root, mailboxes, account, ctx.progress);
  ctx.progress(`directory: built in ${(b.rowsSeconds + b.filesSeconds).toFixed(1)} s`);
  const rows: BenchRow[] = [
    {
      name: `build ${label} in ${count(b.domains)} domains (bench bulk loader)`,
      value: b.rowsSeconds + b.filesSeconds,
      unit: 's',
      note:
        `rows ${b.rowsSeconds.toFixed(1)} s (one precomputed scrypt hash, batched INSERTs, synchronous=OFF; ${(b.bytes / 1e6).toFixed(0)} MB), ` +
        `qmail files + newu + newmrh ${b.filesSeconds.toFixed(1)} s`,
    },
  ];
  const ro = await openDirectory({ root, readonly: true });
  try {
    ctx.progress(`directory: lookups, ${label}`);
    const l = await measureLookups(ro, b, LOOKUP_MAX, LOOKUP_BUDGET_MS);
    if (l.misses > 0) throw new Error(`${l.misses} lookups of existing mailboxes failed`);
    sqlite.set(mailboxes, l);
    rows.push(...lookupRows(l, label, 'SQLite read-only (as delivery workers open it), warm cache'));
    rows.push(...(await deliveries(ctx, ro, b, label)));
  } finally {
    await ro.close();
  }
  ctx.progress(`directory: domain adds at ${count(b.domains)} domains`);
  rows.push(...(await measureChanges(b, account, `at ${count(b.domains)} domains`)));
  rows.push(...readers(b, `${count(b.domains)} domains`));
  return rows;
}

export const directorySection: BenchSection = {
  name: 'directory',
  run: async (ctx: BenchContext) => {
    const large = scale();
    const sizes = large > SMALL ? [SMALL, large] : [large];
    const rows: BenchRow[] = [];
    const sqlite = new Map<number, Lookups>();
    for (const m of sizes) rows.push(...(await oneSize(ctx, m, sqlite)));
    // The same data sets on PostgreSQL, after SQLite (never both at once); a row says why when no cluster starts.
    const pg = await runDirectoryPostgres(ctx, {
      sizes,
      lookupMax: LOOKUP_MAX,
      lookupBudgetMs: LOOKUP_BUDGET_MS,
      loadBudgetMs: PG_LOAD_BUDGET_MS,
    });
    rows.push(...postgresRows(pg, sqlite));
    return rows;
  },
};
