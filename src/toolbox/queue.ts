// qmail_open/qmail_close for the tools: one message straight into quail's queue, as qmail-queue takes it (no rewriting).
import { PassThrough, type Readable } from 'node:stream';
import { errText, QuailError } from '../core/index.js';
import { openQueue } from '../queue/index.js';

export type QueueResult =
  { readonly ok: true; readonly id: string } | { readonly ok: false; readonly code: 100 | 111; readonly text: string };

/**
 * Queues `head` + `body` from `sender` to `recipients`, injected by this process's uid (the queue adds qmail-queue's
 * `Received: (qmail N invoked by uid U)`). Only root or the queue's account can write the queue: any other uid
 * gets a temporary failure (111) naming the fix, and the delivery is retried.
 */
export async function queueMessage(
  root: string,
  sender: string,
  recipients: readonly string[],
  head: string,
  body: Readable | null,
): Promise<QueueResult> {
  const data = new PassThrough();
  // A read error reaches the queue through the stream (its inject fails and nothing is committed); this listener
  // only keeps an error that comes before the queue reads from being an uncaught exception.
  data.on('error', () => undefined);
  data.write(head);
  if (body === null) data.end();
  else {
    body.on('error', (err) => data.destroy(err));
    body.pipe(data);
  }
  try {
    const q = await openQueue(root, { create: false });
    try {
      const id = await q.inject({
        sender,
        recipients,
        data,
        injector: { kind: 'uid', uid: process.getuid?.() ?? 0 },
        meta: { origin: 'inject' },
      });
      return { ok: true, id };
    } finally {
      q.close();
    }
  } catch (err) {
    data.destroy();
    const permanent = err instanceof QuailError && !err.temporary;
    const hint = /EACCES|permission denied/i.test(errText(err))
      ? ' (only root and the queue account may write the queue: deliver as that account, or use a forward line `&address` instead)'
      : '';
    return { ok: false, code: permanent ? 100 : 111, text: `${errText(err)}${hint}` };
  }
}
