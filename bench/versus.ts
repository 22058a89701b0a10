// Section: issue 14's table — SMTP in → fsynced Maildir, quail start and Postfix side by side in one run, with ratios.
import { spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { cpuByRole, treeCpuByPid } from './cpu.js';
import { DOMAINS, domainName, makeDirectoryRoot, makeRoot, mailbox, USERS } from './delivery.js';
import { postfixUnavailable, startPostfix } from './postfix.js';
import { sleep, startQuailProcess } from './quail-process.js';
import { percentile, startProbe, type ProbeFigures } from './probe.js';
import { freePort, HOST } from './sink.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
const CLIENTS = [10, 50] as const;
/** smtp-source processes per case, each to its own mailbox in its own domain (smtp-source has one recipient). */
const SOURCES = 10;
const MIN_BUDGET_MS = 120_000;

interface Measured {
  readonly accepted: number;
  readonly delivered: number;
  readonly acceptS: number;
  readonly deliverS: number;
  readonly cpuMs: number;
  /** The CPU by process role (script or program name), ms. */
  readonly byRole: ReadonlyMap<string, number>;
  /** The latency phase's probe (latencyPhase). */
  readonly latency: ProbeFigures;
}

/** The mailboxes the load goes to: source j → mailbox(j·101) = u<j> in d0<j> (distinct users and domains). */
const targets = (): Array<{ domain: string; user: string }> =>
  Array.from({ length: SOURCES }, (_, j) => mailbox(j * (DOMAINS + 1)));
/** The latency probe's mailbox: u0 in d50, which no smtp-source writes to. */
const PROBE = mailbox(DOMAINS / 2);
/** The probe sends one message every this many milliseconds (about 190 in a 7.5 s phase). */
const PROBE_EVERY_MS = 40;

/** `SOURCES` smtp-source processes, `clients` sessions in all, one message per session, n messages in all. */
async function load(port: number, n: number, clients: number, budgetMs: number): Promise<void> {
  const per = Math.ceil(clients / SOURCES);
  const runs = targets().map(({ domain, user }, j) => {
    const m = Math.floor(n / SOURCES) + (j < n % SOURCES ? 1 : 0);
    // -l 4096: 4 KiB of body after smtp-source's own header lines; -M: its HELO name
    const p = spawn(
      SMTP_SOURCE,
      ['-s', String(per), '-m', String(m), '-l', '4096', '-M', 'client.test', '-f', 'bench@client.test'].concat([
        '-t',
        `${user}@${domain}`,
        `${HOST}:${port}`,
      ]),
      { stdio: 'ignore' },
    );
    const timer = setTimeout(() => p.kill('SIGTERM'), budgetMs);
    return new Promise<void>((r) =>
      p.on('exit', () => {
        clearTimeout(timer);
        r();
      }),
    );
  });
  await Promise.all(runs);
}

/**
 * Messages each server gets before the measured ones (QUAIL_BENCH_WARMUP, default 1,000; 0 for none): the same
 * load, not counted. Without it quail's figures include V8 compiling its hot code (about 1.7 s of CPU after each
 * start, docs/PERFORMANCE.md, eighth pass), which a server that stays up pays once.
 */
function warmup(): number {
  const v = process.env['QUAIL_BENCH_WARMUP'];
  if (v === undefined || v === '') return 1000;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`QUAIL_BENCH_WARMUP=${v} is not a whole number ≥ 0`);
  return n;
}

/**
 * Runs the load against a server with its Maildirs under `newDirs`, measuring its process tree's CPU.
 * `accepted` counts the messages the server said it queued since it started (quail's log); without it every message
 * sent counts as accepted (Postfix).
 */
async function measure(
  o: {
    port: number;
    pid: () => number;
    newDirs: readonly string[];
    probeDir: string;
    n: number;
    clients: number;
    budgetMs: number;
  },
  accepted?: () => number,
): Promise<Measured> {
  const count = (): number => o.newDirs.reduce((s, d) => s + readdirSync(d).length, 0);
  const warm = warmup();
  if (warm > 0) {
    const start = count();
    await load(o.port, warm, o.clients, o.budgetMs);
    const until = Date.now() + o.budgetMs;
    while (count() - start < warm && Date.now() < until) await sleep(10);
    await sleep(300);
  }
  const before = count();
  await sleep(100); // quail start's log is written in 20 ms batches: let the warm-up's smtp.queued lines arrive
  const acceptedBefore = accepted?.() ?? 0;
  const cpu0 = treeCpuByPid(o.pid());
  const t0 = process.hrtime.bigint();
  await load(o.port, o.n, o.clients, o.budgetMs);
  const acceptS = Number(process.hrtime.bigint() - t0) / 1e9;
  await sleep(100); // quail start's log is written in 20 ms batches: let the last smtp.queued lines arrive
  const got = accepted === undefined ? o.n : accepted() - acceptedBefore;
  const deadline = Date.now() + o.budgetMs;
  while (count() - before < got && Date.now() < deadline) await sleep(10);
  const deliverS = Number(process.hrtime.bigint() - t0) / 1e9;
  // settle: the last delivery's bookkeeping (state write, removal) belongs to the message's cost
  await sleep(300);
  const byRole = cpuByRole(cpu0, treeCpuByPid(o.pid()));
  const cpuMs = [...byRole.values()].reduce((a, b) => a + b, 0);
  const delivered = count() - before;
  const latency = await latencyPhase(o, count);
  return { accepted: got, delivered, acceptS, deliverS, cpuMs, byRole, latency };
}

/**
 * The latency phase, after the measured one: the same load again with the probe beside it (one more client,
 * PROBE_EVERY_MS apart, to the probe's own mailbox); its times are the latency rows. Kept apart from the measured
 * phase so that the rates and the CPU per message are those of the load alone.
 */
async function latencyPhase(
  o: { port: number; newDirs: readonly string[]; probeDir: string; n: number; clients: number; budgetMs: number },
  count: () => number,
): Promise<ProbeFigures> {
  const before = count();
  const probe = startProbe({
    port: o.port,
    to: `${PROBE.user}@${PROBE.domain}`,
    newDir: o.probeDir,
    everyMs: PROBE_EVERY_MS,
  });
  await load(o.port, o.n, o.clients, o.budgetMs);
  const figures = await probe.stop(o.budgetMs);
  const deadline = Date.now() + o.budgetMs;
  while (count() - before < o.n && Date.now() < deadline) await sleep(10); // the next case starts on a quiet machine
  return figures;
}

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

async function quailCase(ctx: BenchContext, clients: number, n: number, budgetMs: number): Promise<Measured> {
  const root = join(ctx.workDir, `quail-${clients}`);
  if (via() === 'directory') makeDirectoryRoot(root, [...targets(), PROBE]);
  else {
    makeRoot(root);
    // accept mail for the bench's domains over SMTP (the delivery section injects, so makeRoot leaves rcpthosts alone)
    const domains = Array.from({ length: DOMAINS }, (_, d) => `${domainName(d)}\n`).join('');
    appendFileSync(join(root, 'control', 'rcpthosts'), domains);
  }
  const port = await freePort();
  // authcheck=off: the Postfix case runs no SPF/DKIM/DMARC checks either (and this machine has no DNS to ask;
  // with the default authcheck=header each message waits for the resolver's timeouts)
  writeFileSync(
    join(root, 'control', 'listeners'),
    `${HOST}:${port} smtp maxconn=500 maxperip=500 authcheck=${process.env['QUAIL_BENCH_AUTHCHECK'] ?? 'off'}\n`,
  );
  let queued = 0;
  const quail = await startQuailProcess(root, {
    args: ['--pop3', 'none'],
    ownListeners: true,
    onLine: (l) => {
      if (l.includes(' smtp.queued ')) queued++;
    },
  });
  try {
    const pid = quail.child.pid ?? 0;
    const newDirs = targets().map(({ domain, user }) => join(root, 'domains', domain, user, 'Maildir', 'new'));
    ctx.progress(`versus: quail start, ${clients} clients, ${n} messages after ${warmup()} to warm up`);
    const probeDir = join(root, 'domains', PROBE.domain, PROBE.user, 'Maildir', 'new');
    return await measure({ port, pid: () => pid, newDirs, probeDir, n, clients, budgetMs }, () => queued);
  } finally {
    await quail.stop();
  }
}

async function postfixCase(ctx: BenchContext, clients: number, n: number, budgetMs: number): Promise<Measured> {
  const dir = join(ctx.workDir, `postfix-${clients}`);
  const base = join(dir, 'mail');
  // the same owner as quail's deliveries (quail init's account), the same 1,000 mailboxes in 100 domains
  const probe = join(ctx.workDir, `owner-${clients}`);
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
  const pf = startPostfix({
    dir,
    listen: { host: HOST, port },
    relay: { host: HOST, port: 9 },
    concurrency: clients,
    virtual: { base, mailboxes, owner },
  });
  // ^C or a kill of the bench must not leave the instance running
  const onSignal = (): void => {
    pf.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    ctx.progress(`versus: Postfix, ${clients} clients, ${n} messages after ${warmup()} to warm up`);
    await sleep(500);
    const pid = pf.masterPid();
    if (pid === undefined) throw new Error(`Postfix is not running: ${pf.log().slice(-1000)}`);
    // Postfix says nothing per message on a pipe: every message smtp-source sent counts as accepted.
    const probeDir = join(base, PROBE.domain, PROBE.user, 'Maildir', 'new');
    return await measure({ port, pid: () => pid, newDirs, probeDir, n, clients, budgetMs });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    pf.stop();
  }
}

const rate = (m: Measured): number => m.delivered / m.deliverS;
const acceptRate = (m: Measured): number => m.accepted / m.acceptS;
const cpuPer = (m: Measured): number => m.cpuMs / Math.max(1, m.delivered);
/** `role 0.61, role 1.20` ms per message, biggest first. */
const perRole = (m: Measured): string =>
  [...m.byRole]
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([role, ms]) => `${role} ${(ms / Math.max(1, m.delivered)).toFixed(2)}`)
    .join(', ');
/** The latency rows of one server: p99 to the 250 and to the Maildir, with the p50s and the counts in the notes. */
const latencyRows = (who: string, clients: number, m: Measured): BenchRow[] => {
  const l = m.latency;
  const note = (xs: readonly number[], what: string): string =>
    `p50 ${percentile(xs, 50).toFixed(1)} ms; ${xs.length} of ${l.sent} probe messages ${what}`;
  return [
    {
      name: `${who}, p99 latency to the 250, ${clients} clients`,
      value: percentile(l.smtpMs, 99),
      unit: 'ms',
      note: note(l.smtpMs, 'answered 250 (connect → 250 after DATA, under the same load again)'),
    },
    {
      name: `${who}, p99 latency to the Maildir, ${clients} clients`,
      value: percentile(l.deliveredMs, 99),
      unit: 'ms',
      note: note(l.deliveredMs, 'in the Maildir (connect → file in new/)'),
    },
  ];
};
const describe = (m: Measured): string =>
  `${m.delivered} delivered of ${m.accepted} accepted; accepted in ${m.acceptS.toFixed(1)} s, ` +
  `delivered in ${m.deliverS.toFixed(1)} s; ${(m.cpuMs / 1000).toFixed(1)} s CPU`;

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
    for (const clients of CLIENTS) {
      const q = await quailCase(ctx, clients, n, budgetMs);
      rows.push(
        {
          name: `quail, delivered, ${clients} clients`,
          value: rate(q),
          unit: 'msg/s',
          note: `${describe(q)}; mailboxes made via ${via()} (QUAIL_BENCH_VIA)`,
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
      const p = await postfixCase(ctx, clients, n, budgetMs);
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
          value: percentile(q.latency.deliveredMs, 99) / percentile(p.latency.deliveredMs, 99),
          unit: 'x',
        },
      );
    }
    return rows;
  },
};
