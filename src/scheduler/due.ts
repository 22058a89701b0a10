// A min-heap of (time, item): the scheduler's due recipients and finish times, so no event loops over the whole queue.
import type { QueueId } from '../queue/types.js';
import { dueAt, isComplete, type MessageState } from './state.js';

interface Entry<T> {
  readonly at: number;
  readonly seq: number;
  readonly item: T;
}

/**
 * Items ordered by time (ties in insertion order). Entries may go stale: the owner checks an item when it
 * comes out (`popDue`, `peekAt` with a validity test) and drops it if it no longer holds.
 */
export class TimeHeap<T> {
  private readonly heap: Array<Entry<T>> = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, item });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes and returns every entry with time <= now that `valid` accepts (stale ones are dropped). */
  popDue(now: number, valid: (item: T, at: number) => boolean): T[] {
    const out: T[] = [];
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.at > now) return out;
      this.pop();
      if (valid(top.item, top.at)) out.push(top.item);
    }
  }

  /** The earliest time whose entry `valid` accepts (stale entries at the top are dropped); undefined when none. */
  peekAt(valid: (item: T, at: number) => boolean): number | undefined {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined) return undefined;
      if (valid(top.item, top.at)) return top.at;
      this.pop();
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(l, m)) m = l;
      if (r < h.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private less(a: number, b: number): boolean {
    const x = this.heap[a];
    const y = this.heap[b];
    if (x === undefined || y === undefined) return false;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  private swap(a: number, b: number): void {
    const h = this.heap;
    const x = h[a];
    const y = h[b];
    if (x === undefined || y === undefined) return;
    h[a] = y;
    h[b] = x;
  }
}

/** One recipient of one message, filed under its next attempt time. */
export interface DueRef {
  readonly msg: MessageState;
  readonly index: number;
}

/**
 * The scheduler's held messages by time: recipients by next attempt, complete messages by finish time.
 * Entries are checked against `msgs` (the scheduler's current messages) when they come out, so a change
 * only needs the new time filed; the old entry is dropped as stale.
 */
export class DueIndex {
  private readonly recipients = new TimeHeap<DueRef>();
  private readonly finishes = new TimeHeap<MessageState>();

  constructor(private readonly msgs: ReadonlyMap<QueueId, MessageState>) {}

  /** Files a recipient under its next attempt time (nothing when it is final or not routed). */
  recipient(msg: MessageState, index: number): void {
    const r = msg.recipients[index];
    const at = r === undefined ? undefined : dueAt(r);
    if (at !== undefined) this.recipients.push(at, { msg, index });
  }

  /** Files a message's finish (bounce and removal) when every recipient is final. */
  finish(msg: MessageState): void {
    if (isComplete(msg)) this.finishes.push(msg.finishAfter, msg);
  }

  /** A message just admitted: its recipients, or its finish. */
  message(msg: MessageState): void {
    msg.recipients.forEach((_r, i) => this.recipient(msg, i));
    this.finish(msg);
  }

  /** Removes and returns the recipients due at `now` (any order; the caller sorts). */
  takeRecipients(now: number): DueRef[] {
    return this.recipients.popDue(now, this.recipientValid);
  }

  takeFinishes(now: number): MessageState[] {
    return this.finishes.popDue(now, this.finishValid);
  }

  /** The earliest time with work filed; Infinity when none. */
  next(): number {
    return Math.min(
      this.recipients.peekAt(this.recipientValid) ?? Infinity,
      this.finishes.peekAt(this.finishValid) ?? Infinity,
    );
  }

  /** The message is current, the recipient not in flight, its time unchanged. */
  private readonly recipientValid = ({ msg, index }: DueRef, at: number): boolean => {
    if (this.msgs.get(msg.id) !== msg || msg.finishing || msg.inFlight.has(index)) return false;
    const r = msg.recipients[index];
    return r !== undefined && dueAt(r) === at;
  };

  private readonly finishValid = (msg: MessageState, at: number): boolean =>
    this.msgs.get(msg.id) === msg && !msg.finishing && msg.finishAfter === at && isComplete(msg);
}
