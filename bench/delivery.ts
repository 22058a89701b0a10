// Section: messages per second from injection to Maildir through a running `quail start` (1,000 mailboxes, 100 virtual domains).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openQueue } from '../src/queue/index.js';
import { quailCli as cli, sleep, startQuailProcess } from './quail-process.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

export const DOMAINS = 100;
export const USERS = 10;
const SIZE = 4096;
/** A case may take this long at least (10,000 messages at concurrency 1 need more than the frame's default budget). */
const MIN_BUDGET_MS = 150_000;

export const domainName = (d: number): string => `d${String(d).padStart(2, '0')}.bench.test`;
export const mailbox = (i: number): { domain: string; user: string } => ({
  domain: domainName(i % DOMAINS),
  user: `u${Math.floor(i / DOMAINS) % USERS}`,
});

/** quail init, then 100 virtual domains with 10 Maildir mailboxes each, the seeds' way (virtualdomains, users/assign, .qmail-USER). */
export function makeRoot(root: string): void {
  mkdirSync(root, { mode: 0o755 });
  cli(['init', '--root', root, '--me', 'bench.test']);
  // the account quail init chose: `quail` as root (deliveries then run as its uid), else the invoking user
  const account = readFileSync(join(root, 'control', 'quailuser'), 'utf8').trim();
  const ids = (flag: string): number => Number(spawnSync('id', [flag, account], { encoding: 'utf8' }).stdout.trim());
  const uid = ids('-u');
  const gid = ids('-g');
  const vd: string[] = [];
  const assign: string[] = [];
  for (let d = 0; d < DOMAINS; d++) {
    const dom = domainName(d);
    const home = join(root, 'domains', dom);
    vd.push(`${dom}:${dom}\n`);
    assign.push(`+${dom}-:${account}:${uid}:${gid}:${home}:-::\n`);
    mkdirSync(home, { mode: 0o755 });
    for (let u = 0; u < USERS; u++) {
      writeFileSync(join(home, `.qmail-u${u}`), `./u${u}/Maildir/\n`, { mode: 0o644 });
      for (const sub of ['', 'cur', 'new', 'tmp'])
        mkdirSync(join(home, `u${u}`, 'Maildir', sub), { recursive: true, mode: 0o700 });
    }
  }
  writeFileSync(join(root, 'control', 'virtualdomains'), vd.join(''));
  writeFileSync(join(root, 'users', 'assign'), `${assign.join('')}.\n`);
  cli(['newu', '--root', root]);
  if (process.getuid?.() === 0) spawnSync('chown', ['-R', `${uid}:${gid}`, join(root, 'domains')]);
  benchControl(root);
}

/** QUAIL_BENCH_CONTROL="smtpdprocesses=1 localworkers=2": control files for an A/B run. */
function benchControl(root: string): void {
  for (const kv of (process.env['QUAIL_BENCH_CONTROL'] ?? '').split(/\s+/).filter((w) => w !== '')) {
    const m = /^([a-z0-9]+)=(.*)$/.exec(kv);
    if (m === null) throw new Error(`QUAIL_BENCH_CONTROL: "${kv}" is not name=value`);
    writeFileSync(join(root, 'control', m[1] ?? ''), `${m[2] ?? ''}\n`);
  }
}

/**
 * The same mailboxes the directory's way (`quail domain add`, `quail user add`: SQLite, `.qmail-default` with
 * `| quail vdeliver`), for `addresses` only: each mailbox a CLI run, so only the ones a case sends to.
 */
export function makeDirectoryRoot(root: string, addresses: ReadonlyArray<{ domain: string; user: string }>): void {
  mkdirSync(root, { mode: 0o755 });
  cli(['init', '--root', root, '--me', 'bench.test']);
  for (const domain of new Set(addresses.map((a) => a.domain))) cli(['domain', 'add', '--root', root, domain]);
  for (const { domain, user } of addresses) cli(['user', 'add', '--root', root, '--no-password', `${user}@${domain}`]);
  benchControl(root);
}

function message(i: number): Buffer {
  const { domain, user } = mailbox(i);
  let text = `From: bench@bench.test\nTo: ${user}@${domain}\nSubject: bench ${i}\n\n`;
  const line = `${'x'.repeat(71)}\n`;
  while (text.length + line.length <= SIZE) text += line;
  return Buffer.from(text.padEnd(SIZE - 1, 'y') + '\n', 'latin1');
}

function maildirCount(root: string): number {
  let n = 0;
  for (let d = 0; d < DOMAINS; d++)
    for (let u = 0; u < USERS; u++)
      n += readdirSync(join(root, 'domains', domainName(d), `u${u}`, 'Maildir', 'new')).length;
  return n;
}

export const deliverySection: BenchSection = {
  name: 'injection to Maildir (4 KiB, 1,000 mailboxes in 100 domains, quail start)',
  run: async (ctx: BenchContext) => {
    const n = ctx.n(10_000);
    const budgetMs = Math.max(ctx.caseBudgetMs, MIN_BUDGET_MS);
    const root = join(ctx.workDir, 'root');
    ctx.progress(`delivery: making ${DOMAINS} domains with ${DOMAINS * USERS} mailboxes`);
    makeRoot(root);
    const quail = await startQuailProcess(root);
    const rows: BenchRow[] = [];
    let delivered = 0;
    try {
      const q = await openQueue(root, { create: false });
      const uid = process.getuid?.() ?? 0;
      for (const concurrency of [1, 10, 50]) {
        ctx.progress(`delivery: ${n} messages, injection concurrency ${concurrency}`);
        const start = process.hrtime.bigint();
        const deadline = Date.now() + budgetMs;
        let next = 0;
        let injected = 0;
        const worker = async (): Promise<void> => {
          while (next < n && Date.now() < deadline) {
            const i = next++;
            const { domain, user } = mailbox(i);
            await q.inject({
              sender: 'bench@bench.test',
              recipients: [`${user}@${domain}`],
              data: message(i),
              injector: { kind: 'uid', uid },
            });
            injected++;
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
        const injectS = Number(process.hrtime.bigint() - start) / 1e9;
        // Delivered when the queue is empty again (every message removed after its delivery was recorded).
        while (readdirSync(join(root, 'queue', 'env')).length > 0) {
          if (quail.child.exitCode !== null) throw new Error(`quail start exited: ${quail.log()}`);
          if (Date.now() > deadline + budgetMs)
            throw new Error(`still queued after ${(2 * budgetMs) / 1000} s: ${quail.log().slice(-2000)}`);
          await sleep(20);
        }
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        const inMaildirs = maildirCount(root);
        if (inMaildirs - delivered !== injected)
          throw new Error(`${injected} injected but ${inMaildirs - delivered} in the Maildirs`);
        delivered = inMaildirs;
        const rate = injected / seconds;
        const cut = injected < n ? `, stopped at the ${Math.round(budgetMs / 1000)} s budget` : '';
        rows.push({
          name: `inject → Maildir, concurrency ${concurrency}`,
          value: rate,
          unit: 'msg/s',
          note:
            `${injected} msgs in ${seconds.toFixed(1)} s (injection done after ${injectS.toFixed(1)} s)${cut}; ` +
            `${(rate / ctx.fsyncRate).toFixed(2)}x the disk's fsync rate (${Math.round(ctx.fsyncRate)}/s)`,
        });
      }
      q.close();
    } finally {
      await quail.stop();
    }
    return rows;
  },
};
