// Maildir unique names: `<seconds>.<pid>_<seq>.<host>`, never repeated within a process, distinct across processes.
import { hostname } from 'node:os';

/** Maildir spec: `/` and `:` in the host name are written as `\057` and `\072`. */
export function safeHost(host: string): string {
  return host.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/**
 * One per process (or per deliverer): the counter makes names unique within the process, the pid across
 * processes that run at the same time, the time across pid reuse. Deliveries still open with O_EXCL and
 * link without overwriting, so a clash with another program is retried, never lost.
 */
export class UniqueNamer {
  private seq = 0;
  private readonly host: string;
  constructor(
    host: string = hostname(),
    private readonly pid: number = process.pid,
    private readonly clock: () => number = Date.now,
  ) {
    this.host = safeHost(host);
  }

  next(): string {
    this.seq += 1;
    return `${Math.floor(this.clock() / 1000)}.${this.pid}_${this.seq}.${this.host}`;
  }
}
