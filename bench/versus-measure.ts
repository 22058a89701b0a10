// The side-by-side bench's load and measurement (bench/versus.ts, versus-relay.ts): smtp-source processes against a
// server on 127.0.0.1, its process tree's CPU, and a latency probe beside the same load again.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuByRole, treeCpuByPid, type Reading } from './cpu.js';
import { DOMAINS, mailbox } from './delivery.js';
import { percentile, startProbe, type ProbeFigures } from './probe.js';
import type { PostfixInstance } from './postfix.js';
import { sleep, startQuailProcess } from './quail-process.js';
import { freePort, HOST } from './sink.js';
import type { BenchRow } from './types.js';

export const SMTP_SOURCE = '/usr/sbin/smtp-source';
/** quail's process that takes queued messages on towards delivery: stopped for acceptance alone. */
const QUAIL_SEND = 'send-child.js';
export const CLIENTS = [10, 50] as const;
/** smtp-source processes per case, each to its own mailbox in its own domain (smtp-source has one recipient). */
const SOURCES = 10;
export const MIN_BUDGET_MS = 120_000;

export interface Measured {
  readonly accepted: number;
  readonly delivered: number;
  readonly acceptS: number;
  readonly deliverS: number;
  readonly cpuMs: number;
  /** The CPU by process role (script or program name), ms. */
  readonly byRole: ReadonlyMap<string, number>;
  /** The latency phase's probe (latencyPhase), when the case had a probe mailbox. */
  readonly latency?: ProbeFigures;
  /**
   * Acceptance alone (CaseLoad.acceptAlone): how the delivery side was held, and the messages delivered meanwhile
   * (none, when the hold held); `delivered` then counts those delivered once it was let go, and `cpuMs` is what
   * acceptance alone spent.
   */
  readonly held?: { readonly what: string; readonly delivered: number };
}

/** Sends `sig` to every process below `root` (and `root`) whose role (cpu.ts) is `role`; how many there were. */
function signalRole(root: number, role: string, sig: NodeJS.Signals): number {
  if (!(root > 1)) throw new Error(`no process tree to signal (pid ${root})`); // 0 would be every process there is
  let n = 0;
  for (const [pid, r] of treeCpuByPid(root)) {
    if (r.role !== role) continue;
    process.kill(pid, sig);
    n++;
  }
  return n;
}

/** How a server's delivery side is kept from running for acceptance alone, and let go again. */
interface Hold {
  /** What is held, for the notes. */
  readonly what: string;
  stop(): Promise<void>;
  release(): Promise<void>;
}

/** The mailboxes the load goes to: source j → mailbox(j·101) = u<j> in d0<j> (distinct users and domains). */
export const targets = (): Array<{ domain: string; user: string }> =>
  Array.from({ length: SOURCES }, (_, j) => mailbox(j * (DOMAINS + 1)));
/** The latency probe's mailbox: u0 in d50, which no smtp-source writes to. */
export const PROBE = mailbox(DOMAINS / 2);
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
 * Runs the load against a server whose deliveries so far `count` says (files in the Maildirs, or messages at the
 * sink), measuring its process tree's CPU; then, when `probeDir` (the probe mailbox's `new/`) is given, the latency
 * phase.
 * `accepted` counts the messages the server said it queued since it started (quail's log); without it every message
 * sent counts as accepted (Postfix).
 */
async function measure(
  o: CaseLoad & { readonly port: number; readonly pid: () => number; readonly hold?: Hold },
  accepted?: () => number,
): Promise<Measured> {
  const count = o.count;
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
  await o.hold?.stop();
  const cpu0 = treeCpuByPid(o.pid());
  const t0 = process.hrtime.bigint();
  try {
    await load(o.port, o.n, o.clients, o.budgetMs);
  } catch (err) {
    await o.hold?.release(); // a server whose processes are stopped would not stop
    throw err;
  }
  const acceptS = Number(process.hrtime.bigint() - t0) / 1e9;
  await sleep(100); // quail start's log is written in 20 ms batches: let the last smtp.queued lines arrive
  const got = accepted === undefined ? o.n : accepted() - acceptedBefore;
  if (o.hold !== undefined) return released(o, o.hold, { before, got, acceptS, cpu0 });
  const deadline = Date.now() + o.budgetMs;
  while (count() - before < got && Date.now() < deadline) await sleep(10);
  const deliverS = Number(process.hrtime.bigint() - t0) / 1e9;
  // settle: the last delivery's bookkeeping (state write, removal) belongs to the message's cost
  await sleep(300);
  const byRole = cpuByRole(cpu0, treeCpuByPid(o.pid()));
  const cpuMs = [...byRole.values()].reduce((a, b) => a + b, 0);
  const delivered = count() - before;
  const measured = { accepted: got, delivered, acceptS, deliverS, cpuMs, byRole };
  return o.probeDir === undefined
    ? measured
    : { ...measured, latency: await latencyPhase({ ...o, probeDir: o.probeDir }) };
}

/**
 * The end of a measured phase with the delivery side held: acceptance's CPU is read first, then the hold is let go
 * and the messages delivered, so that the next case starts on a quiet machine; not timed.
 */
async function released(
  o: CaseLoad & { readonly pid: () => number },
  hold: Hold,
  m: { before: number; got: number; acceptS: number; cpu0: Map<number, Reading> },
): Promise<Measured> {
  const byRole = cpuByRole(m.cpu0, treeCpuByPid(o.pid()));
  const deliveredWhileHeld = o.count() - m.before;
  await hold.release();
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + o.budgetMs;
  while (o.count() - m.before < m.got && Date.now() < deadline) await sleep(10);
  return {
    accepted: m.got,
    delivered: o.count() - m.before,
    acceptS: m.acceptS,
    deliverS: Number(process.hrtime.bigint() - t0) / 1e9,
    cpuMs: [...byRole.values()].reduce((a, b) => a + b, 0),
    byRole,
    held: { what: hold.what, delivered: deliveredWhileHeld },
  };
}

/** What a case measures, whoever the server is: deliveries so far, the probe's mailbox (none: no latency phase). */
export interface CaseLoad {
  readonly count: () => number;
  readonly probeDir?: string;
  /**
   * Acceptance alone: after the warm-up, the delivery side is kept from running for the measured phase, so that
   * nothing is delivered while the load is accepted (quail: its send child stopped; Postfix: every message put on
   * hold by smtpd), then let go; no latency phase.
   */
  readonly acceptAlone?: boolean;
  readonly n: number;
  readonly clients: number;
  readonly budgetMs: number;
  /** The bench's progress line (BenchContext.progress). */
  readonly progress: (text: string) => void;
}

/**
 * quail start on `root` (made by the caller) with one SMTP listener on a free port, measured under the load; accepted
 * is the count of its `smtp.queued` events. authcheck=off unless QUAIL_BENCH_AUTHCHECK says otherwise: Postfix runs
 * no SPF/DKIM/DMARC checks either, and this machine has no DNS to ask (with authcheck=header each message would wait
 * for the resolver's timeouts).
 */
export async function measureQuail(root: string, what: string, load: CaseLoad): Promise<Measured> {
  const port = await freePort();
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
    load.progress(`versus: quail start, ${what}, ${load.n} messages after ${warmup()} to warm up`);
    const hold: Hold = {
      what: `${QUAIL_SEND} stopped (SIGSTOP)`,
      stop: () => {
        if (signalRole(pid, QUAIL_SEND, 'SIGSTOP') === 0)
          throw new Error(`quail start has no ${QUAIL_SEND}: acceptance alone cannot be measured`);
        return Promise.resolve();
      },
      release: () => Promise.resolve(void signalRole(pid, QUAIL_SEND, 'SIGCONT')),
    };
    return await measure({ ...load, port, pid: () => pid, ...(load.acceptAlone ? { hold } : {}) }, () => queued);
  } finally {
    if (load.acceptAlone && quail.child.pid !== undefined) signalRole(quail.child.pid, QUAIL_SEND, 'SIGCONT'); // a stopped child would not stop
    await quail.stop();
  }
}

/** A Postfix instance listening on `port`, measured under the load (every message smtp-source sent counts as accepted: Postfix says nothing per message on a pipe). */
export async function measurePostfix(
  pf: PostfixInstance,
  port: number,
  what: string,
  load: CaseLoad,
): Promise<Measured> {
  load.progress(`versus: Postfix, ${what}, ${load.n} messages after ${warmup()} to warm up`);
  await sleep(500);
  const pid = pf.masterPid();
  if (pid === undefined) throw new Error(`Postfix is not running: ${pf.log().slice(-1000)}`);
  const hold: Hold = {
    what: 'every message put on hold by smtpd (HOLD)',
    stop: async () => {
      pf.holdAll(true);
      await sleep(1000); // the reload: smtpd processes of the old configuration finish and are replaced
    },
    release: () => {
      pf.holdAll(false);
      pf.releaseToDeferred();
      pf.flush();
      return Promise.resolve();
    },
  };
  return measure({ ...load, port, pid: () => pid, ...(load.acceptAlone ? { hold } : {}) });
}

/**
 * The latency phase, after the measured one: the same load again with the probe beside it (one more client,
 * PROBE_EVERY_MS apart, to the probe's own mailbox); its times are the latency rows. Kept apart from the measured
 * phase so that the rates and the CPU per message are those of the load alone.
 */
async function latencyPhase(o: {
  port: number;
  count: () => number;
  probeDir: string;
  n: number;
  clients: number;
  budgetMs: number;
}): Promise<ProbeFigures> {
  const before = o.count();
  const probe = startProbe({
    port: o.port,
    to: `${PROBE.user}@${PROBE.domain}`,
    newDir: o.probeDir,
    everyMs: PROBE_EVERY_MS,
  });
  await load(o.port, o.n, o.clients, o.budgetMs);
  const figures = await probe.stop(o.budgetMs);
  const deadline = Date.now() + o.budgetMs;
  while (o.count() - before < o.n && Date.now() < deadline) await sleep(10); // the next case starts on a quiet machine
  return figures;
}

export const rate = (m: Measured): number => m.delivered / m.deliverS;
export const acceptRate = (m: Measured): number => m.accepted / m.acceptS;
export const cpuPer = (m: Measured): number => m.cpuMs / Math.max(1, m.delivered);
/** With a hold: the CPU per message accepted (the delivery side did not run). */
export const cpuPerAccepted = (m: Measured): number => m.cpuMs / Math.max(1, m.accepted);
/** `role 0.61, role 1.20` ms per message (delivered; accepted, with a hold), biggest first. */
export const perRole = (m: Measured): string =>
  [...m.byRole]
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([role, ms]) => `${role} ${(ms / Math.max(1, m.held === undefined ? m.delivered : m.accepted)).toFixed(2)}`)
    .join(', ');
/** The latency rows of one server: p99 to the 250 and to the Maildir, with the p50s and the counts in the notes. */
export const latencyRows = (who: string, clients: number, m: Measured): BenchRow[] => {
  const l = m.latency;
  if (l === undefined) return [];
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
export const describe = (m: Measured): string =>
  m.held === undefined
    ? `${m.delivered} delivered of ${m.accepted} accepted; accepted in ${m.acceptS.toFixed(1)} s, ` +
      `delivered in ${m.deliverS.toFixed(1)} s; ${(m.cpuMs / 1000).toFixed(1)} s CPU`
    : `${m.accepted} accepted in ${m.acceptS.toFixed(1)} s with delivery held (${m.held.what}), ${m.held.delivered} delivered ` +
      `meanwhile; ${(m.cpuMs / 1000).toFixed(1)} s CPU; ${m.delivered} delivered in ${m.deliverS.toFixed(1)} s once let go`;
