// quail queue-inject: quail's qmail-queue, for QMAILQUEUE wrappers (message on fd 0, envelope on fd 1).
import type { Command } from 'commander';
import { queueInject } from '../filter/index.js';
import { resolveRoot } from './common.js';

const DESCRIPTION = `queue the message on fd 0 with the envelope on fd 1 (Fsender\\0Trcpt\\0...\\0), like qmail-queue;
the program a QMAILQUEUE wrapper calls where qmail's called qmail-queue(-real).
exit 0 queued; 53 disk full; 54 cannot read message or envelope; 61 no queue; 62 cannot write the queue;
91 envelope format error (qmail-queue's codes)`;

export function register(program: Command): void {
  program
    .command('queue-inject')
    .description(DESCRIPTION)
    .option('--root <dir>', 'mail root (default: $QUAIL_ROOT, else ./var/quail)')
    .option('--queue <name>', 'join this queue of control/queues (default: $QUAIL_QUEUE, else control/queuerules)')
    .action(async (opts: { root?: string; queue?: string }) => {
      process.exitCode = await queueInject({
        ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
        root: resolveRoot(opts.root),
        message: process.stdin,
        envelopeFd: 1,
        env: process.env,
        stderr: (t) => process.stderr.write(t),
      });
    });
}
