// Child → parent event log over IPC, batched: the events of a few milliseconds travel as one `logs` message.
//
// Cost model (docs/PERFORMANCE.md): a message through quail start makes eight log events in the children (three in
// the SMTP child, five in the send child). Sent one by one, each is a JSON message, a write on the IPC channel, a
// read and a parse in root; batched, a burst of messages costs a few of each. The events of one message arrive
// in separate event-loop turns (each a reply from a socket or a disk), so a batch is a short time window.

/** How long an event may wait for others before it is sent (the log is for people; nothing waits on it). */
export const LOG_WINDOW_MS = 20;

/** What a child sends: its events in order, each `[name, fields]`. */
export interface LogsMessage {
  readonly type: 'logs';
  readonly events: ReadonlyArray<readonly [string, Record<string, unknown>]>;
  /** Handed-over connections (their `adopt` ids) whose sessions ended meanwhile: root counts them out (privchild.ts). */
  readonly closed?: readonly number[];
}

/** Collects events and sends them once per window; flush() sends what waits now (before other messages, at exit). */
export class LogBatch {
  private events: Array<readonly [string, Record<string, unknown>]> = [];
  private ended: number[] = [];
  private armed = false;
  private soon = false;

  constructor(private readonly sendBatch: (m: LogsMessage) => void) {}

  add(event: string, fields: Readonly<Record<string, unknown>>): void {
    this.events.push([event, { ...fields }]);
    this.arm();
  }

  /** A handed-over connection's session ended: told with the next batch (no message of its own per connection). */
  closed(id: number): void {
    this.ended.push(id);
    this.arm();
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setTimeout(() => this.flush(), LOG_WINDOW_MS).unref();
  }

  /**
   * Sends what waits at the end of this event-loop turn, not after the window: for an event something waits on (the
   * SMTP child's `smtp.queued`, the scheduler's wake-up). Those of one turn (the messages one grouped fsync committed)
   * go as one message.
   */
  flushSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      this.flush();
    });
  }

  flush(): void {
    this.armed = false;
    if (this.events.length === 0 && this.ended.length === 0) return;
    const events = this.events;
    const closed = this.ended;
    this.events = [];
    this.ended = [];
    this.sendBatch({ type: 'logs', events, ...(closed.length > 0 ? { closed } : {}) });
  }
}

/** Root's side: each event of a `logs` message, handed to `relay` (which checks the name and the fields). */
export function relayBatch(m: { readonly events?: unknown }, relay: (name: unknown, fields: unknown) => void): void {
  if (!Array.isArray(m.events)) return;
  for (const e of m.events as unknown[]) if (Array.isArray(e) && e.length === 2) relay(e[0], e[1]);
}
