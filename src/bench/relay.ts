// Section: relay throughput, quail's RemoteEngine and a private Postfix, same 4 KiB messages to the same sink.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { Control } from '../control/index.js';
import { RemoteEngine } from '../remote/index.js';
import { postfixUnavailable, startPostfix } from './postfix.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const SMTP_SINK = '/usr/sbin/smtp-sink';
const HOST = '127.0.0.1';
const CONCURRENCIES = [10, 50] as const;

/** An SMTP sink that counts the messages it accepted (final dot answered 250). */
interface Sink {
  readonly label: string;
  readonly port: number;
  count(): number;
  stop(): void;
}

/** A minimal in-process sink: 250 to everything, PIPELINING, swallows DATA (used when smtp-sink is absent). */
async function nodeSink(): Promise<Sink> {
  let messages = 0;
  const server = createServer((s) => {
    s.setEncoding('latin1');
    s.on('error', () => undefined);
    s.write('220 sink ESMTP\r\n');
    let buf = '';
    let inData = false;
    s.on('data', (c: string) => {
      buf += c;
      let nl: number;
      let out = '';
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            messages++;
            out += '250 ok\r\n';
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') out += '250-sink\r\n250 PIPELINING\r\n';
        else if (verb === 'DATA') {
          inData = true;
          out += '354 go\r\n';
        } else if (verb === 'QUIT') {
          s.end(`${out}221 bye\r\n`);
          return;
        } else out += '250 ok\r\n';
      }
      if (out !== '') s.write(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const a = server.address();
  return { label: 'an in-process sink', port: typeof a === 'object' && a !== null ? a.port : 0, count: () => messages, stop: () => server.close() };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const a = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof a === 'object' && a !== null ? a.port : 0;
}

/** True once something accepts TCP connections on HOST:port (tried for up to 10 s). */
async function listening(port: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: HOST, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Postfix's smtp-sink as a separate process; its `-c` counters (`mesg=N` on stdout) count the messages. */
async function smtpSink(): Promise<Sink> {
  const port = await freePort();
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), '-c', `${HOST}:${port}`, '1024'];
  const child = spawn(SMTP_SINK, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let messages = 0;
  let tail = '';
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (d: string) => {
    tail = (tail + d).slice(-200);
    const all = [...tail.matchAll(/mesg=(\d+)/g)];
    const last = all[all.length - 1];
    if (last?.[1] !== undefined) messages = Math.max(messages, Number(last[1]));
  });
  if (!(await listening(port))) {
    child.kill();
    throw new Error(`${SMTP_SINK} did not listen on ${HOST}:${port}`);
  }
  return { label: "Postfix's smtp-sink", port, count: () => messages, stop: () => child.kill() };
}

/** The message files: 4 KiB, one per worker (a worker sends its file again and again). */
function messages(dir: string, count: number): string[] {
  mkdirSync(dir, { recursive: true });
  const head = 'From: bench@example.test\nTo: rcpt@sink.test\nSubject: relay bench\n\n';
  const body = `${'x'.repeat(71)}\n`.repeat(Math.floor((4096 - head.length) / 72));
  return Array.from({ length: count }, (_, i) => {
    const p = join(dir, `msg${i}`);
    writeFileSync(p, head + body);
    return p;
  });
}

/** Sends n one-recipient messages through RemoteEngine to HOST:port with `concurrency` in flight. */
async function pump(root: string, port: number, n: number, concurrency: number, deadlineMs: number): Promise<{ done: number; failed: number; seconds: number; lastError?: string }> {
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
      const r = await engine.deliver({ recipient: `r${i}@sink.test`, sender: 'bench@example.test', messagePath: msgs[w] ?? '' });
      if (r.result === 'success') done++;
      else {
        failed++;
        lastError = r.report.trim();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  engine.close();
  return { done, failed, seconds, ...(lastError !== undefined ? { lastError } : {}) };
}

/** Resolves when `cond()` holds (checked every 10 ms) or `ms` has passed; returns whether it held. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

/** One measured case: how many of `n` the sink received, in how many seconds (clock as described per MTA). */
export interface RelayCase {
  readonly mta: 'quail' | 'postfix';
  readonly concurrency: number;
  readonly n: number;
  /** Messages the sink counted during the measured interval. */
  readonly atSink: number;
  readonly seconds: number;
  readonly rate: number;
  /** Extra facts for the note (injection time, failures). */
  readonly detail: string;
}

async function quailCase(ctx: BenchContext, sink: Sink, n: number, c: number, budgetMs: number): Promise<RelayCase> {
  ctx.progress(`relay: quail RemoteEngine → ${sink.label}, concurrency ${c}, ${n} messages`);
  const base = sink.count();
  const r = await pump(join(ctx.workDir, `quail-${c}`), sink.port, n, c, budgetMs);
  await until(() => sink.count() - base >= r.done, 2000); // smtp-sink's counter line may trail the 250
  const atSink = sink.count() - base;
  const cut = r.done + r.failed < n ? `, stopped at the ${Math.round(budgetMs / 1000)} s budget` : '';
  const fail = r.failed > 0 ? `, ${r.failed} failed (last: ${r.lastError ?? '?'})` : '';
  return { mta: 'quail', concurrency: c, n, atSink, seconds: r.seconds, rate: atSink / r.seconds, detail: `${r.done} accepted${fail}${cut}` };
}

/**
 * Postfix: the messages are injected over SMTP into a private instance whose smtpd puts everything on hold;
 * once all n are in the hold queue, `postsuper -H ALL` moves them to the deferred queue, and the clock runs
 * from `postqueue -f` (deliver the deferred queue now) until the sink has counted n.
 */
async function postfixCase(ctx: BenchContext, sink: Sink, n: number, c: number, budgetMs: number): Promise<RelayCase> {
  const dir = join(ctx.workDir, `postfix-${c}`);
  chmodSync(ctx.workDir, 0o711); // the postfix user must reach its queue below it
  const port = await freePort();
  ctx.progress(`relay: Postfix → ${sink.label}, concurrency ${c}: injecting ${n} messages (held)`);
  const pf = startPostfix({ dir, listen: { host: HOST, port }, relay: { host: HOST, port: sink.port }, concurrency: c });
  const onSignal = (): void => {
    pf.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const inj = await pump(join(ctx.workDir, `inject-${c}`), port, n, Math.min(c, 20), budgetMs);
    if (inj.done !== n) throw new Error(`Postfix accepted ${inj.done} of ${n} messages (${inj.lastError ?? 'budget'})\n${pf.log().slice(-1500)}`);
    if (!(await until(() => pf.held() === n, 30_000))) throw new Error(`Postfix holds ${pf.held()} of ${n} messages\n${pf.log().slice(-1500)}`);
    const base = sink.count();
    pf.releaseToDeferred();
    const early = sink.count() - base;
    ctx.progress(`relay: Postfix → ${sink.label}, concurrency ${c}: releasing ${n} messages`);
    const start = process.hrtime.bigint();
    pf.flush();
    await until(() => sink.count() - base >= n, budgetMs);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const atSink = sink.count() - base;
    const left = pf.queued();
    const notes = [`injected and held in ${inj.seconds.toFixed(1)} s`];
    if (early > 0) notes.push(`${early} delivered before the clock started`);
    if (atSink < n) notes.push(`stopped at the ${Math.round(budgetMs / 1000)} s budget, ${left} still queued`);
    return { mta: 'postfix', concurrency: c, n, atSink, seconds, rate: atSink / seconds, detail: notes.join(', ') };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    pf.stop();
  }
}

function postfixVersion(): string {
  const r = spawnSync('/usr/sbin/postconf', ['-d', '-h', 'mail_version'], { encoding: 'utf8' });
  return r.status === 0 ? `Postfix ${r.stdout.trim()}` : 'Postfix';
}

/** Every case of the section (the test runs this with a tiny n); `reason` says why Postfix was skipped. */
export async function runRelay(ctx: BenchContext): Promise<{ sink: string; cases: RelayCase[]; postfixSkipped?: string }> {
  const n = ctx.n(10_000);
  const budgetMs = Math.max(ctx.caseBudgetMs, 150_000); // the whole n for both, so the ratio compares the same work
  const sink = existsSync(SMTP_SINK) ? await smtpSink() : await nodeSink();
  const skipped = postfixUnavailable();
  const cases: RelayCase[] = [];
  try {
    for (const c of CONCURRENCIES) {
      cases.push(await quailCase(ctx, sink, n, c, budgetMs));
      if (skipped === undefined) cases.push(await postfixCase(ctx, sink, n, c, budgetMs));
    }
  } finally {
    sink.stop();
  }
  return { sink: sink.label, cases, ...(skipped !== undefined ? { postfixSkipped: skipped } : {}) };
}

export type RelayResult = Awaited<ReturnType<typeof runRelay>>;

/** The table rows: per concurrency quail's rate, Postfix's rate and the ratio, or why Postfix was skipped. */
export function relayRows(r: RelayResult): BenchRow[] {
  const rows: BenchRow[] = [];
  const pfName = r.postfixSkipped === undefined ? postfixVersion() : 'Postfix';
  for (const c of CONCURRENCIES) {
    const q = r.cases.find((x) => x.mta === 'quail' && x.concurrency === c);
    const p = r.cases.find((x) => x.mta === 'postfix' && x.concurrency === c);
    if (q) {
      rows.push({ name: `quail → ${r.sink}, concurrency ${c}`, value: q.rate, unit: 'msg/s', note: `${q.atSink} of ${q.n} at the sink in ${q.seconds.toFixed(2)} s; ${q.detail}` });
    }
    if (p) {
      rows.push({ name: `${pfName} → ${r.sink}, concurrency ${c}`, value: p.rate, unit: 'msg/s', note: `${p.atSink} of ${p.n} at the sink in ${p.seconds.toFixed(2)} s; ${p.detail}` });
    }
    if (q && p && p.rate > 0) rows.push({ name: `ratio quail / Postfix, concurrency ${c}`, value: q.rate / p.rate, unit: 'x', note: '>1: quail faster' });
  }
  if (r.postfixSkipped !== undefined) rows.push({ name: 'Postfix comparison skipped', value: 0, unit: '-', note: r.postfixSkipped });
  return rows;
}

export const relaySection: BenchSection = {
  name: 'relay (4 KiB, one recipient, to an SMTP sink on 127.0.0.1; quail vs Postfix)',
  run: async (ctx) => relayRows(await runRelay(ctx)),
};
