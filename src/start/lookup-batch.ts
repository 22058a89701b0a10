// Directory lookup times measured in the SMTP child, sent to the root process in small batches for the metrics.
import type { LookupOp } from './directory-link.js';

/** SMTP child → root: the lookup times (seconds) since the last batch. */
export interface LookupBatch {
  readonly type: 'lookups';
  readonly times: Readonly<Record<LookupOp, readonly number[]>>;
}

/** How often a batch is sent (only when there were lookups). */
const BATCH_MS = 5000;
/** At most this many times per op and batch; more in one interval are not sent (the histogram is a sample then). */
const BATCH_MAX = 10_000;

/**
 * Collects times and sends them every BATCH_MS: one IPC message per interval, never one per lookup (the message
 * path stays free of IPC). The timer does not keep the process alive.
 */
export function lookupBatcher(send: (b: LookupBatch) => void): (op: LookupOp, seconds: number) => void {
  let times: Record<LookupOp, number[]> = { auth: [], rcpt: [], sender: [] };
  let pending = false;
  setInterval(() => {
    if (!pending) return;
    send({ type: 'lookups', times });
    times = { auth: [], rcpt: [], sender: [] };
    pending = false;
  }, BATCH_MS).unref();
  return (op, seconds) => {
    const list = times[op];
    if (list.length < BATCH_MAX) list.push(Math.round(seconds * 1e6) / 1e6);
    pending = true;
  };
}

/** Root's side: a batch from the child, checked (it is the child's word), each time handed to `observe`. */
export function takeLookupBatch(m: unknown, observe: (op: LookupOp, seconds: number) => void): void {
  if (typeof m !== 'object' || m === null) return;
  const times = (m as { times?: unknown }).times;
  if (typeof times !== 'object' || times === null) return;
  for (const op of ['auth', 'rcpt', 'sender'] as const) {
    const list = (times as Record<string, unknown>)[op];
    if (!Array.isArray(list)) continue;
    for (const t of list.slice(0, BATCH_MAX)) if (typeof t === 'number') observe(op, t);
  }
}
