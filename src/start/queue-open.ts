// The scheduler's queue: opened, locked against a second scheduler, recovered (the send child's, or one process's).
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { QuailError } from '../core/index.js';
import { lockFile, type HeldLock } from '../held/index.js';
import { openQueue, type FileQueue } from '../queue/index.js';
import type { EventLog } from './log.js';

/** How long a start waits for another scheduler to let go of queue/lock (an orphaned send process stopping). */
const LOCK_WAIT_MS = 15_000;
const LOCK_RETRY_MS = 200;

/** queue/lock is held by another process past the wait: temporary (the start, or the send process, tries again). */
export class QueueLockedError extends QuailError {
  constructor(message: string) {
    super(message, true);
    this.name = 'QueueLockedError';
  }
}

export interface ScheduledQueue {
  readonly queue: FileQueue;
  /** flock on queue/lock, held while this process schedules; released by close() or by the process's end. */
  readonly lock: HeldLock;
}

/** queue/lock: the file whose flock says a scheduler runs on this queue (docs/QUEUE.md). */
const queueLockPath = (root: string): string => join(root, 'queue', 'lock');

/**
 * Opens the queue, takes queue/lock (two schedulers on one queue would deliver the same message twice: a send process
 * left running by a killed quail start must end before another starts; it waits up to 15 s, then refuses, naming
 * the holder), then recovers it and logs `queue.recovered`, and `queue.warning` when damaged files were moved to
 * queue/corrupt/.
 */
export async function openScheduledQueue(root: string, log: EventLog, waitMs = LOCK_WAIT_MS): Promise<ScheduledQueue> {
  const queue = await openQueue(root);
  const path = queueLockPath(root);
  let lock: HeldLock | 'busy';
  try {
    closeSync(openSync(path, 'a', 0o600));
    const deadline = Date.now() + waitMs;
    while ((lock = await lockFile(path)) === 'busy' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, LOCK_RETRY_MS));
  } catch (err) {
    queue.close();
    throw err;
  }
  if (lock === 'busy') {
    queue.close();
    throw new QueueLockedError(
      `another scheduler runs on ${join(root, 'queue')}: ${path} is locked by another process (fuser -v ${path} names it); stop it first`,
    );
  }
  try {
    const recovered = await queue.recover();
    log.event('queue.recovered', {
      kept: recovered.kept,
      undone: recovered.undone.length,
      removed: recovered.removed.length,
      corrupt: recovered.corrupt.length,
    });
    if (recovered.corrupt.length > 0)
      log.event('queue.warning', {
        corrupt: recovered.corrupt.length,
        dir: join(root, 'queue', 'corrupt'),
        why: 'damaged or unexplained queue files moved aside (never deleted); look at them, `quail status` counts them',
      });
  } catch (err) {
    await lock.close();
    queue.close();
    throw err;
  }
  return { queue, lock };
}
