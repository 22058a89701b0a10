// Section: how many 4 KiB messages per second the queue commits (durably) at concurrency 1, 10 and 50, in-process.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Control } from '../src/control/index.js';
import { injectMessage, parseInjectArgv } from '../src/inject/index.js';
import { openQueue, type NewMessage } from '../src/queue/index.js';
import type { BenchContext, BenchRow, BenchSection } from './types.js';

const SIZE = 4096;

/** A plain 4 KiB message with LF line ends. */
function message4k(): Buffer {
  const head = 'From: bench@example.test\nTo: rcpt@example.test\nSubject: bench\n\n';
  const line = `${'x'.repeat(71)}\n`;
  let body = '';
  while (head.length + body.length + line.length <= SIZE) body += line;
  return Buffer.from((head + body).padEnd(SIZE - 1, 'y') + '\n');
}

interface CaseResult {
  readonly done: number;
  readonly seconds: number;
}

/** Runs `one(i)` for i < n with `concurrency` workers, stopping early when the time budget is spent. */
async function drive(
  n: number,
  concurrency: number,
  budgetMs: number,
  one: (i: number) => Promise<void>,
): Promise<CaseResult> {
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(budgetMs) * 1_000_000n;
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < n && process.hrtime.bigint() < deadline) {
      const i = next++;
      await one(i);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { done, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

function row(name: string, r: CaseResult, n: number, ctx: BenchContext, extra: string): BenchRow {
  const rate = r.done / r.seconds;
  const cut = r.done < n ? `, stopped at the ${Math.round(ctx.caseBudgetMs / 1000)} s budget` : '';
  return {
    name,
    value: rate,
    unit: 'msg/s',
    note: `${r.done} msgs in ${r.seconds.toFixed(2)} s${cut}; ${(rate / ctx.fsyncRate).toFixed(2)}x the disk's fsync rate${extra}`,
  };
}

export const injectSection: BenchSection = {
  name: 'queue injection (4 KiB messages, in-process)',
  run: async (ctx) => {
    const n = ctx.n(2000);
    const data = message4k();
    const rows: BenchRow[] = [];
    for (const concurrency of [1, 10, 50]) {
      const root = join(ctx.workDir, `c${concurrency}`);
      const q = await openQueue(root);
      ctx.progress(`queue inject, concurrency ${concurrency}, ${n} messages`);
      const before = q.dirSyncs();
      const r = await drive(n, concurrency, ctx.caseBudgetMs, async () => {
        const m: NewMessage = {
          sender: 'bench@example.test',
          recipients: ['rcpt@example.test'],
          data,
          injector: { kind: 'uid', uid: 0 },
        };
        await q.inject(m);
      });
      const dirSyncs = q.dirSyncs() - before;
      q.close();
      rows.push(
        row(
          `queue.inject, concurrency ${concurrency}`,
          r,
          n,
          ctx,
          `; ${(dirSyncs / Math.max(1, r.done)).toFixed(2)} dir fsyncs/msg`,
        ),
      );
    }

    // The whole inject path: header parse and rewrite, then the same commit.
    const root = join(ctx.workDir, 'inject');
    mkdirSync(join(root, 'control'), { recursive: true });
    writeFileSync(join(root, 'control', 'me'), 'bench.example.test\n');
    const q = await openQueue(root);
    const control = new Control(root);
    const args = parseInjectArgv([]);
    ctx.progress(`inject path (rewrite + commit), concurrency 10, ${n} messages`);
    const r = await drive(n, 10, ctx.caseBudgetMs, async () => {
      await injectMessage(q, Readable.from([data]), args, { control, env: { USER: 'bench' } });
    });
    q.close();
    rows.push(row('inject (header rewrite + queue.inject), concurrency 10', r, n, ctx, ''));
    return rows;
  },
};
