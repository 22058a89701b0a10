// One delivery task of the scheduler: what it carries, and the recipient state its result leaves behind.
import type { DeliveryResult } from '../core/index.js';
import type { RecipientState } from '../queue/types.js';
import type { MessageState } from './state.js';
import type { Channel } from './types.js';

export interface Task {
  readonly msg: MessageState;
  readonly index: number;
  readonly channel: Channel;
  /** Computed when the channel of the message was taken up (F.2), shared by the whole pass. */
  readonly retry: number;
  readonly dying: boolean;
}

/** The recipient after an attempt: one more attempt, the result and report, and its next time when deferred. */
export function afterAttempt(cur: RecipientState, a: DeliveryResult, retry: number): RecipientState {
  const { nextAttempt: _old, ...rest } = cur;
  return {
    ...rest,
    attempts: rest.attempts + 1,
    lastResult: a.result,
    lastReport: a.report,
    status: a.result === 'success' ? 'done' : a.result === 'failure' ? 'failed' : 'pending',
    ...(a.result === 'deferral' ? { nextAttempt: retry } : {}),
  };
}

/**
 * True when the attempt on recipient `index` (still in flight) completed the message with every recipient
 * delivered: no bounce follows, only the removal, so writing the states first would be an fsync for nothing.
 * The removal itself is the durable record; a crash before it repeats the last delivery, exactly as a crash
 * between the delivery and the state write always did (at-least-once, never lost).
 */
export function endsDelivered(msg: MessageState, index: number): boolean {
  if (msg.inFlight.size !== 1 || !msg.inFlight.has(index)) return false;
  return msg.recipients.every((r) => r.status === 'done');
}
