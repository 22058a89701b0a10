// The QMAILQUEUE hook as smtpd's QueueFilter: the program's environment and time limit, built from the session's.
import { Readable } from 'node:stream';
import type { NewMessage, QueueId } from '../queue/index.js';
import { runQmailQueue } from './qmailqueue.js';

/** Seconds a QMAILQUEUE program may run (QUAIL_FILTERTIMEOUT in tcp.smtp overrides); then it is killed: 451. */
const DEFAULT_FILTER_TIMEOUT = 300;

/** What every program gets besides the session's variables: where quail's root is, and a PATH to find `quail`. */
export interface FilterBase {
  readonly root: string;
  readonly path?: string | undefined;
}

/** The seconds in QUAIL_FILTERTIMEOUT when it is a positive integer, else the default (also `quail filter`'s bound). */
export function filterTimeoutMs(value: string | undefined): number {
  const n = value !== undefined && /^\d{1,6}$/.test(value) ? Number(value) : 0;
  return (n > 0 ? n : DEFAULT_FILTER_TIMEOUT) * 1000;
}

/** smtpd's QueueFilter (structurally): runs the program with the session's environment; resolves with its pid. */
export function qmailQueueFilter(base: FilterBase): {
  run(
    program: string,
    m: { readonly sender: string; readonly recipients: readonly string[]; readonly data: Readable },
    env: Readonly<Record<string, string | undefined>>,
  ): Promise<string>;
} {
  return {
    async run(program, m, env) {
      const full: Record<string, string> = {
        PATH: base.path ?? '/usr/local/bin:/usr/bin:/bin',
        QUAIL_ROOT: base.root,
      };
      for (const [k, v] of Object.entries(env)) if (v !== undefined) full[k] = v;
      const r = await runQmailQueue(program, m, { env: full, timeoutMs: filterTimeoutMs(env['QUAIL_FILTERTIMEOUT']) });
      return String(r.pid);
    },
  };
}

/**
 * QMAILQUEUE for `quail inject` and `sendmail` (qmail-inject's way): a queue target that runs the program with the
 * caller's environment. The "id" it resolves with is the program's pid (qmail's `qp`), which only the log shows.
 */
export function qmailQueueTarget(program: string, env: NodeJS.ProcessEnv): { inject(m: NewMessage): Promise<QueueId> } {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) full[k] = v;
  return {
    async inject(m) {
      const data = Buffer.isBuffer(m.data) ? Readable.from([m.data]) : m.data;
      const r = await runQmailQueue(
        program,
        { sender: m.sender, recipients: m.recipients, data },
        {
          // the queue inject chose by control/queuerules: `quail queue-inject` behind the program joins it
          env: m.queueName !== undefined ? { ...full, QUAIL_QUEUE: m.queueName } : full,
          timeoutMs: filterTimeoutMs(env['QUAIL_FILTERTIMEOUT']),
        },
      );
      return String(r.pid) as QueueId;
    },
  };
}
