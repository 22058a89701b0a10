// The DNS resolver remote uses: the servers named in control/dnsservers, else the system's (/etc/resolv.conf).
import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { QuailError } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { RemoteResolver } from './mx.js';

/**
 * One server per line: `IP`, `IP:PORT` (IPv4) or `[IPv6]:PORT`. Returns the list in node's setServers form;
 * a malformed line is a temporary configuration error (mail waits for the operator), never silently skipped.
 */
export function parseDnsServers(lines: readonly string[]): string[] {
  return lines.map((raw) => {
    const l = raw.trim();
    const v6 = /^\[([0-9a-fA-F:.]+)\](?::([0-9]{1,5}))?$/.exec(l);
    const v4 = /^([0-9.]+)(?::([0-9]{1,5}))?$/.exec(l);
    const m = v6 ?? v4;
    const ip = m?.[1];
    const port = m?.[2] === undefined ? undefined : Number(m[2]);
    if (ip === undefined || isIP(ip) === 0 || (port !== undefined && (port < 1 || port > 65535))) {
      throw new QuailError(
        `control/dnsservers: bad line ${JSON.stringify(raw)} (want IP, IP:PORT or [IPv6]:PORT)`,
        true,
      );
    }
    return l;
  });
}

/** A resolver for one delivery: control/dnsservers when present (2 s per try, 2 tries), else node:dns. */
export function makeResolver(control: Control): RemoteResolver {
  const servers = control.list('dnsservers').value;
  if (servers === null || servers.length === 0) return dnsPromises;
  const r = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
  r.setServers(parseDnsServers(servers));
  return r;
}
