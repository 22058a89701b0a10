// The resolver of a listener's DNS blocklists (smtpd `rbl=`): control/dnsservers as remote delivery reads it.
import { promises as dnsPromises } from 'node:dns';
import { Control } from '../control/index.js';
import { parseDnsServers } from '../remote/index.js';
import type { RblResolver } from '../smtpd/index.js';

/**
 * A fresh resolver per session (control/dnsservers read as it is now; 2 s per try, 2 tries; `cancel` stops what is
 * still asked at the deadline); the system's servers without the file. An unreadable or bad file makes every lookup
 * fail temporarily: rblsmtpd's -C then serves the client, -c refuses it with 451 — never a hang, never a crash.
 */
export function rblResolverFor(root: string): () => RblResolver {
  return () => {
    const r = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
    try {
      const servers = new Control(root).list('dnsservers').value;
      if (servers !== null && servers.length > 0) r.setServers(parseDnsServers(servers));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      return { resolveTxt: () => Promise.reject(e), resolve4: () => Promise.reject(e) };
    }
    return r;
  };
}
