// smtpd's MessageChecker over src/msgauth: inbound SPF/DKIM/DMARC/ARC with the resolver of control/dnsservers.
import { promises as dnsPromises } from 'node:dns';
import type { Readable } from 'node:stream';
import { Control } from '../control/index.js';
import { checkInbound, type DnsResolve } from '../msgauth/index.js';
import { parseDnsServers } from '../remote/index.js';
import type { CheckFacts, CheckVerdict, MessageChecker } from '../smtpd/index.js';

export class InboundLink implements MessageChecker {
  /** The resolver for the control/dnsservers text it was made from (made again when the file changes). */
  private kept: { readonly servers: string; readonly resolve: DnsResolve } | undefined;

  constructor(private readonly root: string) {}

  check(message: () => Readable, facts: CheckFacts): Promise<CheckVerdict> {
    return checkInbound(message(), facts, this.resolver());
  }

  /**
   * control/dnsservers as remote delivery reads it, else the system's resolvers; either way 2 s per try and 2 tries,
   * so an unreachable resolver costs a session at most a few seconds (temperror), never c-ares' long default.
   */
  private resolver(): DnsResolve {
    try {
      const servers = new Control(this.root).list('dnsservers').value ?? [];
      const key = servers.join(' ');
      if (this.kept?.servers === key) return this.kept.resolve;
      const r = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
      if (servers.length > 0) r.setServers(parseDnsServers(servers));
      this.kept = { servers: key, resolve: (name, type) => r.resolve(name, type) };
      return this.kept.resolve;
    } catch (err) {
      // an unreadable or bad control/dnsservers: every lookup fails, the results say temperror
      return () => Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
