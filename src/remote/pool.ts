// Connections per destination (IP and port): a limit on how many are busy at once, and idle ones kept for reuse.
import type { SmtpClient } from './client.js';

export interface PooledConnection {
  readonly client: SmtpClient;
  /** EHLO keywords of the session (after STARTTLS when it was used). */
  readonly ext: ReadonlyMap<string, string>;
  /** The HELO name and TLS policy it was opened with: a connection is reused only for the same. */
  readonly profile: string;
}

interface Dest {
  busy: number;
  readonly waiters: Array<() => void>;
  idle: Array<{ conn: PooledConnection; timer: NodeJS.Timeout }>;
}

/**
 * The pool holds no sockets between components (STYLE.md 2): it lives inside one RemoteEngine. An idle
 * connection is closed with QUIT after `idleMs`, or when the server drops it.
 */
export class ConnectionPool {
  private readonly dests = new Map<string, Dest>();
  private closed = false;

  constructor(
    /** Most busy connections per destination (control/concurrencyremotehost). */
    readonly perHost: number,
    private readonly idleMs: number,
  ) {}

  private dest(key: string): Dest {
    let d = this.dests.get(key);
    if (d === undefined) {
      d = { busy: 0, waiters: [], idle: [] };
      this.dests.set(key, d);
    }
    return d;
  }

  /**
   * Waits for one of the destination's `perHost` slots, at most `waitMs` (default: as long as it takes); the returned
   * function gives it back. Undefined when none became free in time: the caller holds one of the scheduler's
   * concurrencyremote slots meanwhile, so a destination whose connections never end (a server that accepts and never
   * greets) must not keep its waiters, and with them every other destination's mail, for several timeoutremote.
   */
  async slot(key: string, waitMs?: number): Promise<(() => void) | undefined> {
    const d = this.dest(key);
    if (d.busy >= this.perHost) {
      let expired = false;
      let wake: (() => void) | undefined;
      const timer =
        waitMs === undefined
          ? undefined
          : setTimeout(() => {
              expired = true;
              const i = wake === undefined ? -1 : d.waiters.indexOf(wake);
              if (i >= 0) d.waiters.splice(i, 1);
              wake?.();
            }, waitMs);
      try {
        while (d.busy >= this.perHost) {
          if (expired) return undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            d.waiters.push(resolve);
          });
        }
      } finally {
        clearTimeout(timer);
      }
    }
    d.busy++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      d.busy--;
      d.waiters.shift()?.();
    };
  }

  /** An idle, still open connection to `key` opened with `profile`, taken out of the pool. */
  take(key: string, profile: string): PooledConnection | undefined {
    const d = this.dests.get(key);
    if (d === undefined) return undefined;
    for (;;) {
      const i = d.idle.findIndex((x) => x.conn.profile === profile);
      if (i < 0) return undefined;
      const [x] = d.idle.splice(i, 1);
      if (x === undefined) return undefined;
      clearTimeout(x.timer);
      if (x.conn.client.alive) return x.conn;
      x.conn.client.close();
    }
  }

  /** Keeps a connection for reuse (QUIT after idleMs); over the limit, or after close(), it is ended now. */
  put(key: string, conn: PooledConnection): void {
    const d = this.dest(key);
    if (this.closed || d.idle.length >= this.perHost || !conn.client.alive) {
      conn.client.quit();
      return;
    }
    const entry = {
      conn,
      timer: setTimeout(() => {
        d.idle = d.idle.filter((x) => x !== entry);
        conn.client.quit();
      }, this.idleMs),
    };
    entry.timer.unref(); // an idle connection never keeps the process alive
    d.idle.push(entry);
  }

  /** Ends every idle connection with QUIT; busy ones end when their transaction does. */
  close(): void {
    this.closed = true;
    for (const d of this.dests.values()) {
      for (const x of d.idle) {
        clearTimeout(x.timer);
        x.conn.client.quit();
      }
      d.idle = [];
    }
  }
}
