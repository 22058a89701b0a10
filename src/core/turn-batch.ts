// Messages of one event-loop turn sent as one: fewer channel writes (and reads, and wake-ups) between processes.
//
// Cost model (docs/PERFORMANCE.md, third pass): every message on a Node IPC channel is a write system call in the
// sender and a read, an event-loop turn and a parse in the receiver. When several are ready in the same turn (at
// 50 clients, several deliveries finish and several are asked for at once), one `batch` message carries them all.
// A lone message is sent as it is, so a receiver sees the same messages as without batching, in the same order.

/** Several messages of one turn, in order. */
export interface BatchMessage<M> {
  readonly type: 'batch';
  readonly items: readonly M[];
}

/**
 * Collects messages and sends them at the end of the current event-loop turn (setImmediate: after the I/O callbacks
 * of this turn, before the loop waits again), one message as it is, several as one `batch`. flush() sends what
 * waits now: call it before sending anything past the batch, so the order between the two is kept.
 */
export class TurnBatch<M> {
  private items: M[] = [];
  private armed = false;

  constructor(private readonly write: (m: M | BatchMessage<M>) => void) {}

  send(m: M): void {
    this.items.push(m);
    if (this.armed) return;
    this.armed = true;
    setImmediate(() => this.flush());
  }

  /** Is a message that `same` accepts waiting to be sent (e.g. a wake-up, which need not be sent twice)? */
  waiting(same: (m: M) => boolean): boolean {
    return this.items.some(same);
  }

  flush(): void {
    this.armed = false;
    const items = this.items;
    if (items.length === 0) return;
    this.items = [];
    this.write(items.length === 1 ? (items[0] as M) : { type: 'batch', items });
  }
}

/**
 * The receiver's side: the items of a `batch`, else the message itself, each handed to `each`. Nothing is assumed
 * of the items (they come from another process): `each` checks them as it checks any message.
 */
export function unbatch(m: unknown, each: (item: unknown) => void): void {
  if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'batch') {
    const items = (m as { items?: unknown }).items;
    if (Array.isArray(items)) for (const item of items as unknown[]) each(item);
    return;
  }
  each(m);
}
