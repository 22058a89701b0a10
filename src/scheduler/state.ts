// The scheduler's in-memory view of one queued message; the queue on disk stays the truth.
import { asciiLower, splitAddress } from '../core/index.js';
import type { QueuedMessage, QueueId, RecipientState } from '../queue/types.js';

export interface MessageState {
  readonly id: QueueId;
  readonly birth: number;
  readonly sender: string;
  readonly size: number;
  readonly meta: Readonly<Record<string, string>>;
  /** Its named queue (control/queues): slots, lifetime, retries, bounces, remote policy. */
  readonly queueName: string;
  /** The latest recipient states (written to the queue after every change). */
  recipients: RecipientState[];
  /** Indexes of recipients queued for or in delivery right now. */
  readonly inFlight: Set<number>;
  /** Serialises updateRecipients calls of this message (last write carries the latest states). */
  writes: Promise<void>;
  /** Set while the bounce/remove step runs, or the time before which it must not be retried. */
  finishing: boolean;
  finishAfter: number;
  /** The bounce is queued (so a failed removal retried later does not bounce twice). */
  bounced: boolean;
  /**
   * The latest states are not written: the message ended delivered and its removal is the record (task.ts), or its
   * local-only routing waits for the first state that must be written (routing.ts).
   */
  unsaved: boolean;
  /** Admission order in this scheduler (queue order): due recipients are taken up in this order. */
  seq: number;
}

export function messageState(m: QueuedMessage): MessageState {
  return {
    id: m.id,
    birth: m.birth,
    sender: m.sender,
    size: m.size,
    meta: m.meta,
    queueName: m.queueName,
    recipients: [...m.recipients],
    inFlight: new Set(),
    writes: Promise.resolve(),
    finishing: false,
    finishAfter: 0,
    bounced: false,
    unsaved: false,
    seq: 0,
  };
}

const isFinal = (r: RecipientState): boolean => r.status === 'done' || r.status === 'failed';

/** When a recipient may next be attempted: now for todo, its retry time for pending; undefined when final or unrouted. */
export function dueAt(r: RecipientState): number | undefined {
  if (r.channel === undefined) return undefined;
  if (r.status === 'todo') return 0;
  return r.status === 'pending' ? (r.nextAttempt ?? 0) : undefined;
}

/** Every recipient is done or failed and nothing is in flight: time to bounce (if needed) and remove. */
export const isComplete = (m: MessageState): boolean => m.inFlight.size === 0 && m.recipients.every(isFinal);

/**
 * SIGALRM (flush): the pending recipients not in flight whose domain `matches` become due at `now`; returns
 * their indexes (for the due index).
 */
export function flushNow(msg: MessageState, now: number, matches: (domain: string) => boolean): number[] {
  const due: number[] = [];
  msg.recipients = msg.recipients.map((r, i) => {
    if (r.status !== 'pending' || msg.inFlight.has(i)) return r;
    if (!matches(asciiLower(splitAddress(r.address ?? r.original).domain))) return r;
    due.push(i);
    return { ...r, nextAttempt: now };
  });
  return due;
}
