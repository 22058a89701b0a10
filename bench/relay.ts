// Section: relay throughput to one SMTP sink — quail start from its queue, Postfix from its queue, and quail's SMTP client alone.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Control } from '../src/control/index.js';
import { openQueue, type QueueId } from '../src/queue/index.js';
import { RemoteEngine } from '../src/remote/index.js';
import { postfixUnavailable, withPostfix } from './postfix.js';
import { quailCli, startQuailProcess } from './quail-process.js';
import { freePort, HOST, startSink, type Sink } from './sink.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';
import { waitUntil } from '../test/support/wait.js';

const CONCURRENCIES = [10, 50] as const;
/** Messages written into a queue at once while the case is set up (untimed). */
const INJECT_WIDTH = 20;
const SENDER = 'bench@example.test';

/** The 4 KiB message every case sends (one recipient, r<i>@sink.test in the envelope). */
function messageText(): string {
  const head = 'From: bench@example.test\nTo: rcpt@sink.test\nSubject: relay bench\n\n';
  return head + `${'x'.repeat(71)}\n`.repeat(Math.floor((4096 - head.length) / 72));
}

/** The message files: one per worker (a worker sends its file again and again). */
function messages(dir: string, count: number): string[] {
  mkdirSync(dir, { recursive: true });
  return Array.from({ length: count }, (_, i) => {
    const p = join(dir, `msg${i}`);
    writeFileSync(p, messageText());
    return p;
  });
}

/** Runs fn(0) … fn(n-1) with `width` of them in flight. */
async function parallel(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < n; i = next++) await fn(i);
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, worker));
}

const since = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;

/** Sends n one-recipient messages through RemoteEngine to HOST:port with `concurrency` in flight. */
async function pump(
  root: string,
  port: number,
  n: number,
  concurrency: number,
  deadlineMs: number,
): Promise<{ done: number; failed: number; seconds: number; lastError?: string }> {
  mkdirSync(join(root, 'control'), { recursive: true });
  writeFileSync(join(root, 'control', 'me'), 'bench.example.test\n');
  writeFileSync(join(root, 'control', 'smtproutes'), `:${HOST}:${port}\n`);
  const msgs = messages(join(root, 'msgs'), concurrency);
  const engine = new RemoteEngine({ root, control: () => new Control(root), perHost: concurrency, idleMs: 2000 });
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(deadlineMs) * 1_000_000n;
  let next = 0;
  let done = 0;
  let failed = 0;
  let lastError: string | undefined;
  const worker = async (w: number): Promise<void> => {
    while (next < n && process.hrtime.bigint() < deadline) {
      const i = next++;
      const r = await engine.deliver({ recipient: `r${i}@sink.test`, sender: SENDER, messagePath: msgs[w] ?? '' });
      if (r.result === 'success') done++;
      else {
        failed++;
        lastError = r.report.trim();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = since(start);
  engine.close();
  return { done, failed, seconds, ...(lastError !== undefined ? { lastError } : {}) };
}

/**
 * One measured case: how many of `n` the sink received, in how many seconds. `quail` and `postfix`: from
 * the MTA's queue (the same workload, compared by the ratio); `quail-client`: RemoteEngine alone, no queue.
 */
export interface RelayCase {
  readonly mta: 'quail' | 'quail-client' | 'postfix';
  readonly concurrency: number;
  readonly n: number;
  /** Messages the sink counted during the measured interval. */
  readonly atSink: number;
  /** Messages the sink counted after the release and before the clock started (0 when the hold held). */
  readonly early: number;
  readonly seconds: number;
  readonly rate: number;
  /** Extra facts for the note (injection time, failures). */
  readonly detail: string;
}

/** quail's SMTP client alone: RemoteEngine.deliver with message files, no queue, scheduler or state writes. */
async function quailClientCase(
  ctx: BenchContext,
  sink: Sink,
  n: number,
  c: number,
  budgetMs: number,
): Promise<RelayCase> {
  ctx.progress(`relay: quail RemoteEngine alone → ${sink.label}, concurrency ${c}, ${n} messages`);
  const base = sink.count();
  const r = await pump(join(ctx.workDir, `quail-client-${c}`), sink.port, n, c, budgetMs);
  await waitUntil(() => sink.count() - base >= r.done, 2000, 10); // smtp-sink's counter line may trail the 250
  const atSink = sink.count() - base;
  const cut = r.done + r.failed < n ? `, stopped at the ${Math.round(budgetMs / 1000)} s budget` : '';
  const fail = r.failed > 0 ? `, ${r.failed} failed (last: ${r.lastError ?? '?'})` : '';
  return {
    mta: 'quail-client',
    concurrency: c,
    n,
    atSink,
    early: 0,
    seconds: r.seconds,
    rate: atSink / r.seconds,
    detail: `${r.done} accepted${fail}${cut}`,
  };
}

/**
 * quail from its queue, Postfix's workload: `quail init` (control/smtproutes `:HOST:SINK`, concurrencyremote and
 * concurrencyremotehost = c); n messages injected with FileQueue.inject (the queue API, as `quail inject` commits)
 * and each put on hold (setHeld) while no quail runs; `quail start` (the real supervisor) comes up and records them
 * held; each is released (setHeld false, no wake-up: nothing is delivered yet); the clock runs from the flush
 * wake-up (what `quail queue flush` sends) until the sink has counted n and queue/env/ is empty.
 */
async function quailQueueCase(
  ctx: BenchContext,
  sink: Sink,
  n: number,
  c: number,
  budgetMs: number,
): Promise<RelayCase> {
  const root = join(ctx.workDir, `quail-queue-${c}`);
  mkdirSync(root, { mode: 0o755 });
  quailCli(['init', '--root', root, '--me', 'bench.example.test']);
  const controls: Array<[string, string]> = [
    ['smtproutes', `:${HOST}:${sink.port}`],
    ['concurrencyremote', `${c}`],
    ['concurrencyremotehost', `${c}`],
  ];
  for (const [name, value] of controls) writeFileSync(join(root, 'control', name), `${value}\n`);
  ctx.progress(`relay: quail start → ${sink.label}, concurrency ${c}: injecting ${n} messages (held)`);
  const q = await openQueue(root, { create: false });
  const data = Buffer.from(messageText(), 'latin1');
  const injector = { kind: 'uid', uid: process.getuid?.() ?? 0 } as const;
  const ids: QueueId[] = [];
  const tInject = process.hrtime.bigint();
  await parallel(n, INJECT_WIDTH, async (i) => {
    const id = await q.inject({
      sender: SENDER,
      recipients: [`r${i}@sink.test`],
      data,
      injector,
      meta: { origin: 'inject' },
    });
    await q.setHeld(id, true);
    ids[i] = id;
  });
  const injectS = since(tInject);
  const logged = { success: 0, deferral: 0, failure: 0 };
  const base0 = sink.count();
  const quail = await startQuailProcess(root, {
    args: ['--pop3', 'none'],
    startTimeoutMs: 120_000, // recovery and the first scan read every envelope
    onLine: (line) => {
      const m = /\bsend\.delivery .*\bresult=(success|deferral|failure)\b/.exec(line);
      if (m?.[1] === 'success' || m?.[1] === 'deferral' || m?.[1] === 'failure') logged[m[1]]++;
    },
  });
  try {
    const tRelease = process.hrtime.bigint();
    await parallel(n, INJECT_WIDTH, async (i) => {
      const id = ids[i];
      if (id !== undefined) await q.setHeld(id, false);
    });
    const releaseS = since(tRelease);
    const base = sink.count();
    const early = Math.max(base - base0, logged.success + logged.deferral + logged.failure);
    ctx.progress(`relay: quail start → ${sink.label}, concurrency ${c}: flushing ${n} messages`);
    const envDir = join(root, 'queue', 'env');
    const alive = (): boolean => quail.child.exitCode === null && quail.child.signalCode === null;
    const start = process.hrtime.bigint();
    const woken = await q.triggerCounted('flush');
    if (woken === 0) throw new Error(`quail start took no flush wake-up\n${quail.log().slice(-1500)}`);
    await waitUntil(() => !alive() || sink.count() - base >= n, budgetMs, 10);
    await waitUntil(
      () => !alive() || readdirSync(envDir).length === 0,
      Math.max(0, budgetMs - since(start) * 1000),
      10,
    );
    const seconds = since(start);
    if (!alive()) throw new Error(`quail start exited during the case\n${quail.log().slice(-1500)}`);
    // untimed: the last result lines may still be in the log pipe when the queue is already empty
    await waitUntil(() => logged.success + logged.deferral + logged.failure >= n, 5000, 10);
    const atSink = sink.count() - base;
    const left = readdirSync(envDir).length;
    const notes = [
      `${n} injected with FileQueue.inject and held in ${injectS.toFixed(1)} s, released in ${releaseS.toFixed(1)} s (untimed)`,
      `deliveries logged: ${logged.success} success, ${logged.deferral} deferral, ${logged.failure} failure`,
    ];
    if (early > 0) notes.push(`${early} delivered before the clock started`);
    if (atSink < n || left > 0)
      notes.push(`stopped at the ${Math.round(budgetMs / 1000)} s budget, ${left} still queued`);
    return {
      mta: 'quail',
      concurrency: c,
      n,
      atSink,
      early,
      seconds,
      rate: atSink / seconds,
      detail: notes.join('; '),
    };
  } finally {
    await quail.stop();
    q.close();
  }
}

/**
 * Postfix: the messages are injected over SMTP into a private instance whose smtpd puts everything on hold;
 * once all n are in the hold queue, `postsuper -H ALL` moves them to the deferred queue, and the clock runs
 * from `postqueue -f` (deliver the deferred queue now) until the sink has counted n and the queue is empty.
 */
async function postfixCase(ctx: BenchContext, sink: Sink, n: number, c: number, budgetMs: number): Promise<RelayCase> {
  const dir = join(ctx.workDir, `postfix-${c}`);
  chmodSync(ctx.workDir, 0o711); // the postfix user must reach its queue below it
  const port = await freePort();
  ctx.progress(`relay: Postfix → ${sink.label}, concurrency ${c}: injecting ${n} messages (held)`);
  const o = { dir, listen: { host: HOST, port }, relay: { host: HOST, port: sink.port }, concurrency: c };
  return withPostfix(o, async (pf) => {
    const inj = await pump(join(ctx.workDir, `inject-${c}`), port, n, Math.min(c, INJECT_WIDTH), budgetMs);
    if (inj.done !== n)
      throw new Error(
        `Postfix accepted ${inj.done} of ${n} messages (${inj.lastError ?? 'budget'})\n${pf.log().slice(-1500)}`,
      );
    if (!(await waitUntil(() => pf.held() === n, 30_000, 10)))
      throw new Error(`Postfix holds ${pf.held()} of ${n} messages\n${pf.log().slice(-1500)}`);
    const base = sink.count();
    pf.releaseToDeferred();
    const early = sink.count() - base;
    ctx.progress(`relay: Postfix → ${sink.label}, concurrency ${c}: releasing ${n} messages`);
    const start = process.hrtime.bigint();
    pf.flush();
    await waitUntil(() => sink.count() - base >= n, budgetMs, 10);
    await waitUntil(() => pf.queued() === 0, Math.max(0, budgetMs - since(start) * 1000), 10);
    const seconds = since(start);
    const atSink = sink.count() - base;
    const left = pf.queued();
    const notes = [`injected over SMTP and held in ${inj.seconds.toFixed(1)} s`];
    if (early > 0) notes.push(`${early} delivered before the clock started`);
    if (atSink < n || left > 0)
      notes.push(`stopped at the ${Math.round(budgetMs / 1000)} s budget, ${left} still queued`);
    return {
      mta: 'postfix',
      concurrency: c,
      n,
      atSink,
      early,
      seconds,
      rate: atSink / seconds,
      detail: notes.join(', '),
    };
  });
}

function postfixVersion(): string {
  const r = spawnSync('/usr/sbin/postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' });
  return r.status === 0 ? `Postfix ${r.stdout.trim()}` : 'Postfix';
}

/** Every case of the section (the test runs this with a tiny n); `postfixSkipped` says why Postfix was skipped. */
export async function runRelay(
  ctx: BenchContext,
): Promise<{ sink: string; cases: RelayCase[]; postfixSkipped?: string }> {
  const n = ctx.n(10_000);
  const budgetMs = Math.max(ctx.caseBudgetMs, 150_000); // the whole n for every case, so the ratio compares the same work
  const sink = await startSink();
  const skipped = postfixUnavailable();
  const cases: RelayCase[] = [];
  try {
    for (const c of CONCURRENCIES) {
      cases.push(await quailQueueCase(ctx, sink, n, c, budgetMs));
      cases.push(await quailClientCase(ctx, sink, n, c, budgetMs));
      if (skipped === undefined) cases.push(await postfixCase(ctx, sink, n, c, budgetMs));
    }
  } finally {
    sink.stop();
  }
  return { sink: sink.label, cases, ...(skipped !== undefined ? { postfixSkipped: skipped } : {}) };
}

export type RelayResult = Awaited<ReturnType<typeof runRelay>>;

/**
 * The table rows, per concurrency: quail from its queue, Postfix from its queue, their ratio, then quail's
 * SMTP client alone (no queue); or why Postfix was skipped.
 */
export function relayRows(r: RelayResult): BenchRow[] {
  const rows: BenchRow[] = [];
  const pfName = r.postfixSkipped === undefined ? postfixVersion() : 'Postfix';
  const row = (name: string, x: RelayCase): BenchRow => ({
    name,
    value: x.rate,
    unit: 'msg/s',
    note: `${x.atSink} of ${x.n} at the sink in ${x.seconds.toFixed(2)} s; ${x.detail}`,
  });
  for (const c of CONCURRENCIES) {
    const find = (mta: RelayCase['mta']): RelayCase | undefined =>
      r.cases.find((x) => x.mta === mta && x.concurrency === c);
    const q = find('quail');
    const p = find('postfix');
    const client = find('quail-client');
    if (q) rows.push(row(`quail start, queue → ${r.sink}, concurrency ${c}`, q));
    if (p) rows.push(row(`${pfName}, queue → ${r.sink}, concurrency ${c}`, p));
    if (q && p && p.rate > 0)
      rows.push({
        name: `ratio quail / Postfix, queue → sink, concurrency ${c}`,
        value: q.rate / p.rate,
        unit: 'x',
        note: '>1: quail faster; same workload',
      });
    if (client) rows.push(row(`quail SMTP client alone, no queue → ${r.sink}, concurrency ${c}`, client));
  }
  if (r.postfixSkipped !== undefined)
    rows.push({ name: 'Postfix comparison skipped', value: 0, unit: '-', note: r.postfixSkipped });
  return rows;
}

export const relaySection: BenchSection = {
  name: 'relay (4 KiB, one recipient, to an SMTP sink on 127.0.0.1; quail vs Postfix)',
  run: async (ctx) => relayRows(await runRelay(ctx)),
};
