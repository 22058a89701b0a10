// Connection limits of a listener: how many sessions at once, and how many from one client address.

export type Admission = 'ok' | 'maxconn' | 'maxperip';

/**
 * Counts open sessions in all and per client address. `admit` either counts the connection in (then `release`
 * must follow exactly once, when the session ends) or says which limit refused it. One per listener (SMTP and POP3
 * alike): the limits are each listener's options.
 */
export class ConnectionLimits {
  private total = 0;
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerIp: number,
  ) {}

  admit(ip: string): Admission {
    if (this.total >= this.maxConnections) return 'maxconn';
    const n = this.perIp.get(ip) ?? 0;
    if (n >= this.maxPerIp) return 'maxperip';
    this.total++;
    this.perIp.set(ip, n + 1);
    return 'ok';
  }

  release(ip: string): void {
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
    if (this.total > 0) this.total--;
  }

  get open(): number {
    return this.total;
  }

  /** Open sessions from one address. */
  from(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }
}
