// Which IP addresses to try, in order (SEMANTICS.md E.3-E.4): relay or MX by preference, then A; "is it me?".
import { networkInterfaces } from 'node:os';
import { ipLiteral, type Route } from './routes.js';

/** The DNS queries remote needs; node:dns/promises (or a `Resolver`) satisfies it. */
export interface RemoteResolver {
  resolveMx(host: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(host: string): Promise<string[]>;
}

export interface Target {
  readonly ip: string;
  readonly pref: number;
}

export type Targets =
  | { readonly kind: 'ok'; readonly targets: readonly Target[] }
  | { readonly kind: 'temporary'; readonly report: string }
  | { readonly kind: 'permanent'; readonly report: string };

export const AMBIGUOUS_MX =
  "Sorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n";
const TEMP_DNS = "Sorry, I couldn't find any host by that name. (#4.1.2)\n";
const permNoDns = (host: string): string => `Sorry, I couldn't find any host named ${host}. (#5.1.2)\n`;

/** This machine's IPv4 addresses (qmail's ipme): every interface address, plus 0.0.0.0. */
export function localAddresses(): ReadonlySet<string> {
  const out = new Set<string>(['0.0.0.0']);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4') out.add(a.address);
  }
  return out;
}

/** NXDOMAIN / no data are permanent; anything else (SERVFAIL, timeouts) is temporary. */
function isHardDnsError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

async function aRecords(host: string, resolver: RemoteResolver, pref: number): Promise<Target[]> {
  const lit = ipLiteral(host);
  if (lit !== null) return [{ ip: lit, pref }];
  return (await resolver.resolve4(host)).map((ip) => ({ ip, pref }));
}

/**
 * The addresses to try for `host` under `route`, best first. Without a relay, addresses with a preference
 * at or above the best preference of this machine are dropped; if none remain the host lists us as its best
 * MX (E.4). The check is skipped for relays, as qmail does.
 */
export async function resolveTargets(
  host: string,
  route: Route,
  resolver: RemoteResolver,
  ipme: ReadonlySet<string>,
): Promise<Targets> {
  let targets: Target[];
  const name = route.kind === 'relay' ? route.relay : host;
  try {
    if (route.kind === 'relay' || ipLiteral(host) !== null) {
      targets = await aRecords(name, resolver, 0);
    } else {
      let mx: Array<{ exchange: string; priority: number }> = [];
      try {
        mx = await resolver.resolveMx(host);
      } catch (err) {
        if (!isHardDnsError(err) || (err as { code?: unknown }).code === 'ENOTFOUND') throw err;
      }
      if (mx.length === 0) targets = await aRecords(host, resolver, 0);
      else {
        targets = [];
        const sorted = [...mx].sort((a, b) => a.priority - b.priority);
        for (const m of sorted) {
          try {
            targets.push(...(await aRecords(m.exchange, resolver, m.priority)));
          } catch (err) {
            if (!isHardDnsError(err)) throw err; // an MX without an address is skipped, as qmail does
          }
        }
      }
    }
  } catch (err) {
    return isHardDnsError(err) ? { kind: 'permanent', report: permNoDns(name) } : { kind: 'temporary', report: TEMP_DNS };
  }
  if (targets.length === 0) return { kind: 'permanent', report: permNoDns(name) };
  if (route.kind === 'relay') return { kind: 'ok', targets };
  let prefme = Infinity;
  for (const t of targets) if (ipme.has(t.ip) && t.pref < prefme) prefme = t.pref;
  const usable = targets.filter((t) => t.pref < prefme);
  if (usable.length === 0) return { kind: 'permanent', report: AMBIGUOUS_MX };
  return { kind: 'ok', targets: usable };
}
