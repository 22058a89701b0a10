// Stress mode for a listener near its connection limit (Postfix's smtpd stress timeouts), for the SMTP and POP3
// listeners: while it holds three quarters of maxconn or more, every wait for a client is capped at `stresstimeout=`
// seconds (10 by default), the waits under way included; below half of maxconn the normal timeout (SMTP:
// control/timeoutsmtpd; POP3: the listener's idle=) is back. Idle clients can no longer keep every slot for minutes
// while real clients are refused.
import type { Reader } from './reader.js';

export interface StressGauge {
  /** A session's reader, from its start to its end. */
  join(r: Reader): void;
  leave(r: Reader): void;
}

export class ListenerStress implements StressGauge {
  private readonly readers = new Set<Reader>();
  private on = false;

  constructor(
    private readonly maxConnections: number,
    /** The cap in ms; 0 = stress mode off. */
    private readonly capMs: number,
    /** Called when the mode changes, with the connections counted then. */
    private readonly changed: (on: boolean, connections: number) => void,
  ) {}

  get stressed(): boolean {
    return this.on;
  }

  join(r: Reader): void {
    this.readers.add(r);
    if (this.on) r.setCap(this.capMs);
  }

  leave(r: Reader): void {
    this.readers.delete(r);
  }

  /** Another process counts the listener's connections (several SMTP processes) and says when the mode changes. */
  set(on: boolean): void {
    if (on === this.on) return;
    this.on = on;
    for (const r of this.readers) r.setCap(on && this.capMs > 0 ? this.capMs : undefined);
  }

  /** The listener's connection count changed (a session began or ended, or one was refused at the limit). */
  update(connections: number): void {
    // no limit here: another process counts, and set() says the mode
    if (this.capMs <= 0 || !Number.isFinite(this.maxConnections)) return;
    const next = this.on ? connections * 2 >= this.maxConnections : connections * 4 >= this.maxConnections * 3;
    if (next === this.on) return;
    this.on = next;
    for (const r of this.readers) r.setCap(next ? this.capMs : undefined);
    this.changed(next, connections);
  }
}
