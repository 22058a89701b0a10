// control/smtproutes lookup (docs/QMAIL.md E.2-E.3): which relay, if any, a recipient's host goes to.
import type { MapEntry } from '../control/index.js';
import { asciiLower, ipScan } from '../core/index.js';

/** Where to connect: a fixed relay (smtproutes) or the host's MX records. */
export type Route =
  | { readonly kind: 'relay'; readonly relay: string; readonly port: number; readonly pattern: string }
  | { readonly kind: 'mx'; readonly pattern?: string };

/** E.2 candidates: the whole host, each suffix starting at a `.` from left to right, then "". */
export function routeCandidates(host: string): string[] {
  const out = [host];
  for (let i = 0; i < host.length; i++) if (host[i] === '.') out.push(host.slice(i));
  out.push('');
  return out;
}

/**
 * Looks the host up in a parsed smtproutes map (keys lowercased, last line wins). The first candidate present
 * decides; an empty relay means "no route: use MX" (E.3). `relay:port`; text after a second `:` is ignored.
 */
export function lookupRoute(host: string, routes: ReadonlyMap<string, MapEntry> | null): Route {
  if (routes === null) return { kind: 'mx' };
  for (const cand of routeCandidates(host)) {
    const entry = routes.get(asciiLower(cand));
    if (entry === undefined) continue;
    const colon = entry.value.indexOf(':');
    const relay = colon < 0 ? entry.value : entry.value.slice(0, colon);
    if (relay === '') return { kind: 'mx', pattern: entry.pattern };
    let port = 25;
    if (colon >= 0) {
      // qmail's scan_ulong: the leading digits; none gives port 0 (no connection possible), as in qmail.
      const m = /^[0-9]+/.exec(entry.value.slice(colon + 1));
      port = m ? Number(m[0]) : 0;
    }
    return { kind: 'relay', relay, port, pattern: entry.pattern };
  }
  return { kind: 'mx' };
}

/**
 * A dotted IPv4 address, or `[a.b.c.d]`; null when the text is a host name. Read as qmail's ip_scan reads it
 * (dns.c tries it before any DNS query, for a relay and for an unrouted host alike): each part any number of
 * decimal digits, kept modulo 256 (ip.c stores it in a byte), so `127.0.0.0001` and `[127.0.0.257]` are 127.0.0.1.
 */
export function ipLiteral(text: string): string | null {
  return ipScan(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
}
