// quail queue: the operator's view of the queue (qmail-qread, qmail-qstat, SIGALRM) plus show/hold/delete/export/import.
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { rfc5322Date } from '../core/index.js';
import {
  type FileQueue,
  type QueuedMessage,
  type RecipientState,
  exportQueue,
  importQueue,
  openQueue,
  toQueueId,
} from '../queue/index.js';
import { action, addRootOption, resolveRoot, usageError, writableTarget } from './common.js';
import { progressBar } from './progress.js';

interface RootOpt {
  readonly root?: string;
}

function open(opts: RootOpt): Promise<FileQueue> {
  return openQueue(resolveRoot(opts.root), { create: false });
}

/** 2d3h, 2h13m, 5m10s, 12s. */
export function formatAge(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s % 60}s`;
  return `${s}s`;
}

const oneLine = (s: string, max = 200): string => {
  const t = s.replace(/\s*\n\s*/g, ' / ').trim();
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
};

/** One recipient as `quail queue list` shows it: state, channel, address, attempts, last result. */
export function formatRecipient(r: RecipientState, nowSec: number): string {
  const parts = [r.status, r.channel ?? '-', r.address ?? r.original];
  const notes: string[] = [];
  if (r.attempts) notes.push(`attempts ${r.attempts}`);
  if (r.status === 'pending' && r.nextAttempt !== undefined) {
    notes.push(r.nextAttempt <= nowSec ? 'due now' : `next in ${formatAge(r.nextAttempt - nowSec)}`);
  }
  if (r.lastResult) notes.push(`${r.lastResult}${r.lastReport ? `: ${oneLine(r.lastReport)}` : ''}`);
  if (r.address !== undefined && r.address !== r.original) notes.push(`(was ${r.original})`);
  return `\t${parts.join('\t')}${notes.length ? `\t${notes.join('; ')}` : ''}`;
}

/** The first line of a message in `quail queue list` (like qmail-qread's). */
export function formatMessage(m: QueuedMessage, nowSec: number): string {
  const date = rfc5322Date(new Date(m.birth * 1000)).replace(/-0000$/, 'GMT');
  const flags = [m.held ? 'held' : '', m.queueName !== 'default' ? `queue ${m.queueName}` : ''].filter(Boolean);
  return `${date}  #${m.id}  ${m.size}  <${m.sender}>  age ${formatAge(nowSec - m.birth)}${flags.length ? `  [${flags.join(', ')}]` : ''}`;
}

async function each(q: FileQueue, fn: (m: QueuedMessage) => void | Promise<void>): Promise<void> {
  for (const id of await q.ids()) {
    const m = await q.read(id);
    if (m) await fn(m); // removed meanwhile: skip
  }
}

async function mustRead(q: FileQueue, idText: string): Promise<QueuedMessage> {
  const id = toQueueId(idText);
  const m = await q.read(id);
  if (!m) throw usageError(`message ${id} is not in the queue (see quail queue list)`);
  return m;
}

async function countDir(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).length;
  } catch {
    return 0;
  }
}

export function register(program: Command): void {
  const queue = program.command('queue').description('inspect and manage the queue (<root>/queue)');

  addRootOption(
    queue
      .command('list')
      .description('every message: id, age, sender, each recipient with its state (like qmail-qread)'),
  )
    .option('--json', 'one JSON object per line')
    .option('--queue <name>', 'only the messages of this named queue (control/queues)')
    .action(
      action('queue list', async (opts: RootOpt & { json?: boolean; queue?: string }) => {
        const q = await open(opts);
        const now = Math.floor(q.clock() / 1000);
        await each(q, (m) => {
          if (opts.queue !== undefined && m.queueName !== opts.queue) return;
          if (opts.json) process.stdout.write(`${JSON.stringify(m)}\n`);
          else
            process.stdout.write(
              `${formatMessage(m, now)}\n${m.recipients.map((r) => `${formatRecipient(r, now)}\n`).join('')}`,
            );
        });
      }),
    );

  addRootOption(queue.command('stat').description('counts (like qmail-qstat)'))
    .option('--queue <name>', 'only the messages of this named queue (control/queues)')
    .action(
      action('queue stat', async (opts: RootOpt & { queue?: string }) => {
        const q = await open(opts);
        let messages = 0;
        let fresh = 0;
        let held = 0;
        const rc = { todo: 0, pending: 0, done: 0, failed: 0 };
        const byQueue = new Map<string, number>();
        await each(q, (m) => {
          if (opts.queue !== undefined && m.queueName !== opts.queue) return;
          byQueue.set(m.queueName, (byQueue.get(m.queueName) ?? 0) + 1);
          messages++;
          if (m.held) held++;
          if (m.recipients.every((r) => r.channel === undefined)) fresh++;
          for (const r of m.recipients) rc[r.status]++;
        });
        process.stdout.write(
          `messages in queue: ${messages}\n` +
            `messages in queue but not yet preprocessed: ${fresh}\n` +
            `messages held: ${held}\n` +
            `recipients: todo ${rc.todo}, pending ${rc.pending}, done ${rc.done}, failed ${rc.failed}\n` +
            `files in corrupt/: ${await countDir(join(q.dir, 'corrupt'))}\n` +
            // Named queues in use: one more line (a queue of only `default` prints qmail-qstat's lines alone).
            ([...byQueue.keys()].some((n) => n !== 'default')
              ? `messages by queue: ${[...byQueue].map(([n, c]) => `${n} ${c}`).join(', ')}\n`
              : ''),
        );
      }),
    );

  addRootOption(queue.command('show <id>').description('the envelope, recipient states and the message itself'))
    .option('--envelope-only', 'do not print the message')
    .action(
      action('queue show', async (idText: string, opts: RootOpt & { envelopeOnly?: boolean }) => {
        const q = await open(opts);
        const m = await mustRead(q, idText);
        const now = Math.floor(q.clock() / 1000);
        const lines = [
          `id: ${m.id}`,
          `birth: ${rfc5322Date(new Date(m.birth * 1000))} (${m.birth}, age ${formatAge(now - m.birth)})`,
          `sender: <${m.sender}>`,
          `size: ${m.size}`,
          `held: ${m.held ? 'yes' : 'no'}`,
          `queue: ${m.queueName}`,
          ...Object.entries(m.meta).map(([k, v]) => `meta ${k}: ${v}`),
          `file: ${q.messagePath(m.id)}`,
          'recipients:',
          ...m.recipients.map((r) => formatRecipient(r, now)),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
        if (!opts.envelopeOnly) {
          process.stdout.write('--- message ---\n');
          await pipeline(createReadStream(q.messagePath(m.id)), process.stdout, { end: false });
        }
      }),
    );

  addRootOption(queue.command('flush').description('retry every deferred recipient now (like SIGALRM to qmail-send)'))
    .option('--domain <domain>', 'only recipients in this domain')
    .action(
      action('queue flush', async (opts: RootOpt & { domain?: string }) => {
        if (opts.domain !== undefined && !/^[^\s@]{1,255}$/.test(opts.domain))
          throw usageError(`bad domain: ${opts.domain}`);
        const q = await open(opts);
        const n = await q.triggerCounted('flush', opts.domain);
        if (n)
          process.stdout.write(`flush requested${opts.domain ? ` for ${opts.domain}` : ''}: ${n} scheduler(s) woken\n`);
        else
          process.stdout.write(
            'no scheduler is running: nothing to wake; deferred messages are tried when quail start runs\n',
          );
      }),
    );

  const perId = (name: string, verb: string, fn: (q: FileQueue, m: QueuedMessage) => Promise<void>): void => {
    addRootOption(queue.command(`${name} <id...>`).description(`${verb} messages`)).action(
      action(`queue ${name}`, async (ids: string[], opts: RootOpt) => {
        const q = await open(opts);
        for (const t of ids) {
          const m = await mustRead(q, t);
          await fn(q, m);
          process.stdout.write(`${m.id}: ${verb}\n`);
        }
      }),
    );
  };
  perId('delete', 'deleted (no bounce)', (q, m) => q.remove(m.id));
  perId('hold', 'held', (q, m) => q.setHeld(m.id, true));
  perId('release', 'released', async (q, m) => {
    await q.setHeld(m.id, false);
    q.trigger('flush');
  });

  addRootOption(queue.command('export <file> [id...]').description('write the queue (or the given messages) to FILE'))
    .option('--delete', 'remove the exported messages from this queue once FILE is safely written')
    .action(
      action('queue export', async (file: string, ids: string[], opts: RootOpt & { delete?: boolean }) => {
        writableTarget(file);
        const q = await open(opts);
        const bar = progressBar('queue export');
        const res = await exportQueue(
          q,
          file,
          ids.length ? ids.map(toQueueId) : undefined,
          opts.delete ?? false,
          (done, total) => bar.tick(done, total, 'messages'),
        ).finally(() => bar.stop());
        process.stdout.write(
          `exported ${res.ids.length} message(s) to ${file}${opts.delete ? ' and removed them here' : ''}\n`,
        );
      }),
    );

  addRootOption(queue.command('import <file>').description('add the messages of an export FILE to this queue')).action(
    action('queue import', async (file: string, opts: RootOpt) => {
      const q = await open(opts);
      const bar = progressBar('queue import');
      const res = await importQueue(q, file, (done, total) => bar.tick(done, total, 'bytes')).finally(() => bar.stop());
      for (const [a, b] of res.renamed) process.stdout.write(`${a} -> ${b} (id already in use here)\n`);
      process.stdout.write(`imported ${res.ids.length} message(s)\n`);
    }),
  );

  addRootOption(
    queue.command('recover').description('finish or undo interrupted writes; move damaged files to corrupt/'),
  )
    .option('--verify', 'also check every message against its checksum')
    .action(
      action('queue recover', async (opts: RootOpt & { verify?: boolean }) => {
        const q = await open(opts);
        const r = await q.recover({ verify: opts.verify ?? false });
        process.stdout.write(
          `kept ${r.kept}, undone ${r.undone.length}, removals finished ${r.removed.length}, ` +
            `stale updates ${r.staleUpdates}, in flight ${r.inFlight}, moved to corrupt/ ${r.corrupt.length}, ` +
            `restored from the journal ${r.restored.length}\n`,
        );
        for (const c of r.corrupt) process.stdout.write(`moved to corrupt/ (inspect it): ${c}\n`);
      }),
    );
}
