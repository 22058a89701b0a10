// Section: issue 14's table — SMTP in → fsynced Maildir, quail start and Postfix side by side in one run, with ratios.
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SQLITE_FILE, type DeliveryAccount } from '../src/directory/index.js';
import { DOMAINS, domainName, makeDirectoryRoot, makeRoot, USERS } from './delivery.js';
import { addToDirectory } from './directory-load.js';
import { postfixUnavailable, withPostfix } from './postfix.js';
import { percentile } from './probe.js';
import { freePort, HOST } from './sink.js';
import {
  acceptRate,
  CLIENTS,
  cpuPer,
  cpuPerAccepted,
  describe,
  latencyRows,
  type CaseLoad,
  measurePostfix,
  measureQuail,
  type Measured,
  MIN_BUDGET_MS,
  perRole,
  PROBE,
  rate,
  SMTP_SOURCE,
  targets,
} from './versus-measure.js';
import { relayRows } from './versus-relay.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

/** Counts the files in the Maildirs' `new/` directories. */
const files = (newDirs: readonly string[]) => (): number => newDirs.reduce((s, d) => s + readdirSync(d).length, 0);

function account(root: string): { uid: number; gid: number } {
  const name = readFileSync(join(root, 'control', 'quailuser'), 'utf8').trim();
  const id = (flag: string): number => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * How quail's mailboxes are made (QUAIL_BENCH_VIA): `assign` (default) as qmail does, users/assign and `.qmail-USER`
 * for 1,000 mailboxes; `directory` as the user directory does, `quail domain add` and `quail user add` for the
 * mailboxes the load goes to, delivered by `| quail vdeliver` (RCPT checked against the directory).
 */
function via(): 'assign' | 'directory' {
  const v = process.env['QUAIL_BENCH_VIA'] ?? '';
  if (v === '' || v === 'assign') return 'assign';
  if (v === 'directory') return 'directory';
  throw new Error(`QUAIL_BENCH_VIA=${v}: say assign or directory`);
}

/**
 * With QUAIL_BENCH_VIA=directory, QUAIL_BENCH_MAILBOXES more mailboxes (10 per domain) in the directory beside the
 * ones the load goes to, so the whole path (RCPT against the directory, morercpthosts.cdb, virtualdomains, users/cdb)
 * runs at that scale: issue 14's "flat at 1,000,000 mailboxes in 100,000 domains" end to end. Unset (or the assign
 * variant): none. (The directory section reads the same variable, and there unset means 1,000,000.)
 */
function extraMailboxes(): number {
  const v = process.env['QUAIL_BENCH_MAILBOXES'];
  if (via() !== 'directory') return 0;
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`QUAIL_BENCH_MAILBOXES=${v} is not a whole number ≥ 1`);
  return n;
}

/** The delivery account the directory's domains use (what `quail domain add` chose for the load's domains). */
function directoryAccount(root: string): DeliveryAccount {
  const db = new Database(join(root, SQLITE_FILE), { readonly: true });
  try {
    const row = db.prepare('SELECT account, uid, gid FROM domains LIMIT 1').get() as
      { account: string; uid: number; gid: number } | undefined;
    if (!row) throw new Error(`no domain in ${root}'s directory`);
    return { user: row.account, uid: row.uid, gid: row.gid };
  } finally {
    db.close();
  }
}

/**
 * Which cases run (QUAIL_BENCH_CASES): `local` (to the Maildirs), `relay` (to the sink), `accept` (acceptance alone:
 * SMTP → durable queue with the delivery side held), or all three (the default).
 */
function cases(): { local: boolean; relay: boolean; accept: boolean } {
  const v = process.env['QUAIL_BENCH_CASES'] ?? '';
  if (v === '') return { local: true, relay: true, accept: true };
  if (v === 'local' || v === 'relay' || v === 'accept')
    return { local: v === 'local', relay: v === 'relay', accept: v === 'accept' };
  throw new Error(`QUAIL_BENCH_CASES=${v}: say local, relay or accept (or nothing for all three)`);
}

/** One case of the section: its load's size and budget, and whether the delivery side is held (acceptance alone). */
interface Case {
  readonly ctx: BenchContext;
  readonly clients: number;
  readonly n: number;
  readonly budgetMs: number;
  readonly acceptAlone: boolean;
}

/** A case's directory name under the work directory (`quail-10`, `postfix-50-accept`...). */
const caseDir = (c: Case, what: string): string =>
  join(c.ctx.workDir, `${what}-${c.clients}${c.acceptAlone ? '-accept' : ''}`);

/** What measureQuail / measurePostfix run: the probe's mailbox, or none and the hold (acceptance alone). */
function caseLoad(c: Case, newDirs: readonly string[], probeDir: string): { what: string; load: CaseLoad } {
  const { clients, n, budgetMs, acceptAlone } = c;
  return {
    what: `${clients} clients${acceptAlone ? ', acceptance alone' : ''}`,
    load: {
      count: files(newDirs),
      ...(acceptAlone ? { acceptAlone } : { probeDir }),
      n,
      clients,
      budgetMs,
      progress: c.ctx.progress,
    },
  };
}

async function quailCase(c: Case): Promise<Measured> {
  const { ctx } = c;
  const root = caseDir(c, 'quail');
  if (via() === 'directory') {
    makeDirectoryRoot(root, [...targets(), PROBE]);
    const extra = extraMailboxes();
    if (extra > 0) {
      ctx.progress(`versus: ${extra} more mailboxes in the directory`);
      await addToDirectory(root, extra, directoryAccount(root), ctx.progress);
      // the bulk load's dirty pages (hundreds of MB at 1,000,000) go to the disk now, not under the measured load
      spawnSync('sync');
    }
  } else {
    makeRoot(root);
    // accept mail for the bench's domains over SMTP (the delivery section injects, so makeRoot leaves rcpthosts alone)
    const domains = Array.from({ length: DOMAINS }, (_, d) => `${domainName(d)}\n`).join('');
    appendFileSync(join(root, 'control', 'rcpthosts'), domains);
  }
  const newDirs = targets().map(({ domain, user }) => join(root, 'domains', domain, user, 'Maildir', 'new'));
  const probeDir = join(root, 'domains', PROBE.domain, PROBE.user, 'Maildir', 'new');
  const { what, load } = caseLoad(c, newDirs, probeDir);
  return measureQuail(root, what, load);
}

async function postfixCase(c: Case): Promise<Measured> {
  const dir = caseDir(c, 'postfix');
  const base = join(dir, 'mail');
  // the same owner as quail's deliveries (quail init's account), the same 1,000 mailboxes in 100 domains
  const probe = caseDir(c, 'owner');
  makeRoot(probe);
  const owner = account(probe);
  const mailboxes = new Map<string, string>();
  for (let d = 0; d < DOMAINS; d++)
    for (let u = 0; u < USERS; u++) mailboxes.set(`u${u}@${domainName(d)}`, `${domainName(d)}/u${u}/Maildir/`);
  const newDirs = targets().map(({ domain, user }) => join(base, domain, user, 'Maildir', 'new'));
  mkdirSync(base, { recursive: true, mode: 0o755 });
  for (const [, rel] of mailboxes)
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(base, rel, sub), { recursive: true, mode: 0o700 });
  spawnSync('chown', ['-R', `${owner.uid}:${owner.gid}`, base]);
  chownSync(base, owner.uid, owner.gid);
  const port = await freePort();
  const o = {
    dir,
    listen: { host: HOST, port },
    relay: { host: HOST, port: 9 },
    concurrency: c.clients,
    virtual: { base, mailboxes, owner },
  };
  const probeDir = join(base, PROBE.domain, PROBE.user, 'Maildir', 'new');
  const { what, load } = caseLoad(c, newDirs, probeDir);
  return withPostfix(o, (pf) => measurePostfix(pf, port, what, load));
}

export const versusSection: BenchSection = {
  name: 'issue 14: SMTP → fsynced Maildir, quail start and Postfix side by side (4 KiB, 1,000 mailboxes)',
  run: async (ctx) => {
    const n = ctx.n(3000);
    const budgetMs = Math.max(ctx.caseBudgetMs, MIN_BUDGET_MS);
    if (!existsSync(SMTP_SOURCE))
      return [{ name: 'versus Postfix', value: 0, unit: '-', note: `${SMTP_SOURCE} missing (Debian: postfix)` }];
    chmodSync(ctx.workDir, 0o711); // Postfix's account and quail's delivery account must reach what is below
    const rows: BenchRow[] = [];
    const why = postfixUnavailable();
    const parts = cases();
    for (const clients of parts.local ? CLIENTS : []) {
      const q = await quailCase({ ctx, clients, n, budgetMs, acceptAlone: false });
      rows.push(
        {
          name: `quail, delivered, ${clients} clients`,
          value: rate(q),
          unit: 'msg/s',
          note:
            `${describe(q)}; mailboxes made via ${via()} (QUAIL_BENCH_VIA)` +
            (extraMailboxes() > 0 ? `, ${extraMailboxes()} more in the directory (QUAIL_BENCH_MAILBOXES)` : ''),
        },
        { name: `quail, accepted, ${clients} clients`, value: acceptRate(q), unit: 'msg/s' },
        {
          name: `quail, server CPU per message, ${clients} clients`,
          value: cpuPer(q),
          unit: 'ms',
          note: `all quail processes; by process: ${perRole(q)}`,
        },
        ...latencyRows('quail', clients, q),
      );
      if (why !== undefined) {
        rows.push({ name: `Postfix, ${clients} clients`, value: 0, unit: '-', note: `skipped: ${why}` });
        continue;
      }
      const p = await postfixCase({ ctx, clients, n, budgetMs, acceptAlone: false });
      rows.push(
        { name: `Postfix, delivered, ${clients} clients`, value: rate(p), unit: 'msg/s', note: describe(p) },
        { name: `Postfix, accepted, ${clients} clients`, value: acceptRate(p), unit: 'msg/s' },
        {
          name: `Postfix, server CPU per message, ${clients} clients`,
          value: cpuPer(p),
          unit: 'ms',
          note: `master and its children; by process: ${perRole(p)}`,
        },
        ...latencyRows('Postfix', clients, p),
        { name: `ratio quail / Postfix, delivered, ${clients} clients`, value: rate(q) / rate(p), unit: 'x' },
        {
          name: `ratio quail / Postfix, accepted, ${clients} clients`,
          value: acceptRate(q) / acceptRate(p),
          unit: 'x',
        },
        { name: `ratio quail / Postfix, CPU per message, ${clients} clients`, value: cpuPer(q) / cpuPer(p), unit: 'x' },
        {
          name: `ratio quail / Postfix, p99 latency to the Maildir, ${clients} clients`,
          value: percentile(q.latency?.deliveredMs ?? [], 99) / percentile(p.latency?.deliveredMs ?? [], 99),
          unit: 'x',
        },
      );
    }
    if (parts.relay) rows.push(...(await relayRows(ctx, n, budgetMs, why)));
    for (const clients of parts.accept ? CLIENTS : []) rows.push(...(await acceptRows(ctx, clients, n, budgetMs, why)));
    return rows;
  },
};

/**
 * Acceptance alone (issue 14: SMTP → durable queue ≥ 3× Postfix): the same load and mailboxes as the local case, with
 * each server's delivery side held after the warm-up (quail's send child stopped; Postfix's smtpd putting every
 * message on hold), so the rate is the SMTP side's and the CPU is what taking a message into the queue costs. `why`:
 * Postfix cannot run here.
 */
async function acceptRows(
  ctx: BenchContext,
  clients: number,
  n: number,
  budgetMs: number,
  why: string | undefined,
): Promise<BenchRow[]> {
  const rows = (who: string, m: Measured, note: string): BenchRow[] => [
    { name: `${who}, accepted alone, ${clients} clients`, value: acceptRate(m), unit: 'msg/s', note: describe(m) },
    {
      name: `${who}, server CPU per accepted message, delivery stopped, ${clients} clients`,
      value: cpuPerAccepted(m),
      unit: 'ms',
      note: `${note}; by process: ${perRole(m)}`,
    },
  ];
  const q = await quailCase({ ctx, clients, n, budgetMs, acceptAlone: true });
  const out = rows('quail', q, 'all quail processes');
  if (why !== undefined)
    return [
      ...out,
      { name: `Postfix, accepted alone, ${clients} clients`, value: 0, unit: '-', note: `skipped: ${why}` },
    ];
  const p = await postfixCase({ ctx, clients, n, budgetMs, acceptAlone: true });
  return [
    ...out,
    ...rows('Postfix', p, 'master and its children'),
    {
      name: `ratio quail / Postfix, accepted alone, ${clients} clients`,
      value: acceptRate(q) / acceptRate(p),
      unit: 'x',
    },
    {
      name: `ratio quail / Postfix, CPU per accepted message, delivery stopped, ${clients} clients`,
      value: cpuPerAccepted(q) / cpuPerAccepted(p),
      unit: 'x',
    },
  ];
}
