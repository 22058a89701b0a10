// Section: SMTP acceptance (SMTP in → queue commit) and end to end (SMTP in → Maildir) at 1, 10, 50 clients; idle memory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Control } from '../src/control/index.js';
import { openQueue } from '../src/queue/index.js';
import { SmtpListener } from '../src/smtpd/index.js';
import { systemPasswd } from '../src/users/index.js';
import { sendOne, smtpMessage4k } from './smtp-client.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const SELF = fileURLToPath(import.meta.url);
const CLI = join(dirname(SELF), '..', 'src', 'cli', 'main.js');
const CONCURRENCY = [1, 10, 50] as const;
const IDLE = 1000;
const TO = 'postmaster@example.com';

async function drive(n: number, concurrency: number, budgetMs: number, one: () => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + budgetMs;
  let next = 0;
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (next < n && Date.now() < deadline) {
      next++;
      if (await one()) ok++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ok;
}

/** Postfix's smtp-source (Debian package postfix) when installed (and QUAIL_BENCH_LOAD is not `builtin`). */
function smtpSourcePath(): string | undefined {
  if (process.env['QUAIL_BENCH_LOAD'] === 'builtin') return undefined;
  return ['/usr/sbin/smtp-source', '/usr/bin/smtp-source'].find((p) => existsSync(p));
}

/** Sends n messages with `concurrency` clients; stops at the budget. Resolves when the generator is done. */
async function load(port: number, n: number, concurrency: number, ctx: BenchContext): Promise<void> {
  const src = smtpSourcePath();
  if (src === undefined) {
    const message = smtpMessage4k(TO);
    await drive(n, concurrency, ctx.caseBudgetMs, () => sendOne(port, TO, message));
    return;
  }
  // -l 4096: 4 KiB of body; one session per message, `concurrency` sessions in parallel.
  const p = spawn(
    src,
    [
      '-s',
      String(concurrency),
      '-m',
      String(n),
      '-l',
      '4096',
      '-f',
      'bench@client.test',
      '-t',
      TO,
      `127.0.0.1:${port}`,
    ],
    { stdio: 'ignore' },
  );
  const timer = setTimeout(() => p.kill('SIGTERM'), ctx.caseBudgetMs);
  await new Promise((r) => p.on('exit', r));
  clearTimeout(timer);
}

const until = async (cond: () => boolean, ms: number): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
};

/** As root, the account quail start would serve SMTP as (control/quailuser); else run as we are. */
function account(root: string): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  const name = new Control(root).single('quailuser').value;
  const e = name === null ? undefined : systemPasswd().byName(name);
  return e && e.uid !== 0 ? { uid: e.uid, gid: e.gid } : {};
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** Starts a child process (this file in `serve` mode or quail start); resolves with it and its SMTP port. */
async function startServer(
  args: readonly string[],
  opts: { uid?: number; gid?: number },
  portOf: (out: string) => number | undefined,
): Promise<{ p: ChildProcess; port: number; queued: () => number }> {
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });
  let out = '';
  let partial = '';
  let queued = 0;
  p.stdout?.on('data', (c: Buffer) => {
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (l === 'q' || l.includes(' smtp.queued ')) queued++;
      if (out.length < 100_000) out += `${l}\n`;
    }
  });
  await until(() => portOf(out) !== undefined || p.exitCode !== null, 30_000);
  const port = portOf(out);
  if (port === undefined) {
    p.kill('SIGKILL');
    throw new Error(`the SMTP server did not start: ${out.slice(-500)}`);
  }
  return { p, port, queued: () => queued };
}

const stop = async (p: ChildProcess): Promise<void> => {
  if (p.exitCode !== null) return;
  const exited = new Promise((r) => p.on('exit', r));
  p.kill('SIGTERM');
  await exited;
};

function rate(name: string, done: number, seconds: number, n: number, extra: string): BenchRow {
  return { name, value: done / seconds, unit: 'msg/s', note: `${done}/${n} msgs in ${seconds.toFixed(2)} s; ${extra}` };
}

/** Idle connections: each gets its greeting and then says nothing. */
async function idleMemory(pid: number, port: number): Promise<BenchRow> {
  const before = rssKiB(pid);
  const socks: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: IDLE },
      () =>
        new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port });
          socks.push(s);
          s.once('data', () => resolve());
          s.once('error', () => resolve());
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKiB(pid);
  for (const s of socks) s.destroy();
  return {
    name: `smtp idle connection memory (${IDLE} connections)`,
    value: (after - before) / IDLE,
    unit: 'KiB/conn',
    note: `server RSS ${before} → ${after} KiB`,
  };
}

export const smtpSection: BenchSection = {
  name: 'SMTP acceptance and end to end (4 KiB messages, 127.0.0.1)',
  run: async (ctx) => {
    const n = ctx.n(1000);
    const rows: BenchRow[] = [];
    const gen = smtpSourcePath() !== undefined ? 'load: postfix smtp-source' : 'load: built-in client';
    // As root the serving process runs as control/quailuser: it must be able to reach the work directory.
    for (const d of [dirname(ctx.workDir), ctx.workDir]) chmodSync(d, statSync(d).mode | 0o011);
    const init = (root: string): void => {
      const r = spawnSync(process.execPath, [CLI, 'init', '--root', root, '--domain', 'example.com'], {
        encoding: 'utf8',
      });
      if (r.status !== 0) throw new Error(`quail init failed: ${r.stderr}`);
    };
    // 1. acceptance: the SMTP listener and the queue alone (no scheduler) in their own process.
    for (const c of CONCURRENCY) {
      const root = join(ctx.workDir, `accept-${c}`);
      init(root);
      const srv = await startServer(
        [SELF, 'serve', root],
        account(root),
        (o) => Number(/^port (\d+)$/m.exec(o)?.[1]) || undefined,
      );
      ctx.progress(`smtp acceptance, ${c} clients, ${n} messages (${gen})`);
      const t0 = process.hrtime.bigint();
      await load(srv.port, n, c, ctx);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      rows.push(rate(`smtp accept (→ queue commit), ${c} client${c > 1 ? 's' : ''}`, srv.queued(), s, n, gen));
      if (c === CONCURRENCY[CONCURRENCY.length - 1] && srv.p.pid !== undefined) {
        ctx.progress(`smtp idle memory, ${IDLE} connections`);
        rows.push(await idleMemory(srv.p.pid, srv.port));
      }
      await stop(srv.p);
    }
    // 2. end to end: quail start (scheduler, local delivery), SMTP in → example.com's postmaster Maildir.
    for (const c of CONCURRENCY) {
      const root = join(ctx.workDir, `e2e-${c}`);
      init(root);
      // authcheck=off as in the side-by-side section: with smtp's default (header) each message waited for SPF/DMARC
      // DNS queries this machine cannot answer, and the rows measured the resolver's timeouts (25 msg/s)
      writeFileSync(
        join(root, 'control', 'listeners'),
        `127.0.0.1:0 smtp maxconn=5000 maxperip=5000 authcheck=${process.env['QUAIL_BENCH_AUTHCHECK'] ?? 'off'}\n`,
      );
      const srv = await startServer([CLI, 'start', '--root', root], {}, (o) =>
        o.includes('quail.started') ? Number(/smtp\.listening address=\S+ port=(\d+)/.exec(o)?.[1]) : undefined,
      );
      const maildir = join(root, 'domains', 'example.com', 'postmaster', 'Maildir', 'new');
      ctx.progress(`smtp → Maildir, ${c} clients, ${n} messages (${gen})`);
      const t0 = process.hrtime.bigint();
      await load(srv.port, n, c, ctx);
      // smtp.queued log lines reach us through the parent's stdout, possibly after the client's 250: settle first
      await new Promise((r) => setTimeout(r, 200));
      await until(() => readdirSync(maildir).length >= srv.queued(), ctx.caseBudgetMs + 30_000);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      rows.push(
        rate(
          `smtp → Maildir (quail start), ${c} client${c > 1 ? 's' : ''}`,
          readdirSync(maildir).length,
          s,
          n,
          `${gen}; delivered by the scheduler's local workers`,
        ),
      );
      await stop(srv.p);
    }
    return rows;
  },
};

/** `node smtp.js serve ROOT`: the listener and the queue only; prints `port N`, then `q` per queued message. */
async function serve(root: string): Promise<void> {
  const queue = await openQueue(root);
  const l = new SmtpListener(
    { host: '127.0.0.1', port: 0, kind: 'smtp', options: { maxconn: '5000', maxperip: '5000' } },
    {
      controlFor: () => new Control(root),
      queue,
      log: (event) => {
        if (event === 'smtp.queued') process.stdout.write('q\n');
      },
    },
  );
  const a = await l.listen();
  process.stdout.write(`port ${a.port}\n`);
  process.once(
    'SIGTERM',
    () =>
      void l.close(0).then(() => {
        queue.close();
        process.exit(0);
      }),
  );
}

if (process.argv[1] === SELF && process.argv[2] === 'serve' && process.argv[3] !== undefined)
  void serve(process.argv[3]);
