// Which IP addresses to try, in order (docs/QMAIL.md E.3-E.4, RFC 5321 5.1, RFC 7505): relay or MX, then A/AAAA.
import { networkInterfaces } from 'node:os';
import { ipLiteral, type Route } from './routes.js';

/** The DNS queries remote needs; node:dns/promises (or a `Resolver`) satisfies it. */
export interface RemoteResolver {
  resolveMx(host: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(host: string): Promise<string[]>;
  /** AAAA; optional so that a resolver without IPv6 still works (then only A records are used). */
  resolve6?(host: string): Promise<string[]>;
}

export interface Target {
  readonly ip: string;
  readonly pref: number;
  /** The host name the address belongs to (the MX or relay name; the IP itself for literals): TLS checks it. */
  readonly name: string;
}

export type Targets =
  | { readonly kind: 'ok'; readonly targets: readonly Target[] }
  | { readonly kind: 'temporary'; readonly report: string }
  | { readonly kind: 'permanent'; readonly report: string };

const AMBIGUOUS_MX =
  "Sorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n";
const TEMP_DNS = "Sorry, I couldn't find any host by that name. (#4.1.2)\n";
const permNoDns = (host: string): string => `Sorry, I couldn't find any host named ${host}. (#5.1.2)\n`;
/** RFC 7505 section 4.2: a null MX means the domain accepts no mail; 5.1.10 is its enhanced code (RFC 7505 4.3). */
export const nullMxReport = (host: string): string =>
  `Sorry, ${host} publishes a null MX: it accepts no mail (RFC 7505). (#5.1.10)\n`;

/** This machine's addresses (qmail's ipme): every interface address, IPv4 and IPv6, plus 0.0.0.0 and ::. */
export function localAddresses(): ReadonlySet<string> {
  const out = new Set<string>(['0.0.0.0', '::']);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address);
  }
  return out;
}

/**
 * localAddresses() remembered for `ttlMs` (default 10 s): a RemoteEngine asks once per delivery, and
 * networkInterfaces() is a system call plus an object per address. An address added or removed is seen
 * within `ttlMs`.
 */
export function cachedLocalAddresses(ttlMs = 10_000, now: () => number = Date.now): () => ReadonlySet<string> {
  let addrs: ReadonlySet<string> | undefined;
  let until = 0;
  return () => {
    const t = now();
    if (addrs === undefined || t >= until || t < until - ttlMs) {
      addrs = localAddresses();
      until = t + ttlMs;
    }
    return addrs;
  };
}

/** NXDOMAIN / no data are permanent; anything else (SERVFAIL, timeouts, refused) is temporary. */
function isHardDnsError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;

/** A and AAAA for a name (IPv4 first, as most sites still prefer it); NXDOMAIN throws, no data gives []. */
async function addresses(host: string, resolver: RemoteResolver, pref: number): Promise<Target[]> {
  const lit = ipLiteral(host);
  if (lit !== null) return [{ ip: lit, pref, name: lit }];
  const out: Target[] = [];
  let hard: Error | undefined;
  for (const q of [resolver.resolve4.bind(resolver), resolver.resolve6?.bind(resolver)]) {
    if (q === undefined) continue;
    try {
      for (const ip of await q(host)) out.push({ ip, pref, name: host });
    } catch (err) {
      if (!isHardDnsError(err)) throw err;
      hard = err as Error;
    }
  }
  if (out.length === 0 && hard !== undefined) throw hard;
  return out;
}

/** RFC 5321 5.1: MX hosts of equal preference are tried in random order (load spreading). */
export function shuffleEqual<T extends { pref: number }>(items: readonly T[], random: () => number): T[] {
  const out = [...items].sort((a, b) => a.pref - b.pref);
  for (let start = 0; start < out.length;) {
    let end = start;
    while (end < out.length && out[end]?.pref === out[start]?.pref) end++;
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      const a = out[i] as T;
      out[i] = out[j] as T;
      out[j] = a;
    }
    start = end;
  }
  return out;
}

export interface ResolveOptions {
  /** Random numbers in [0, 1) for the shuffle of equal preferences; default Math.random. */
  readonly random?: () => number;
}

/**
 * The addresses to try for `host` under `route`, best first. Without a relay, addresses with a preference
 * at or above the best preference of this machine are dropped; if none remain the host lists us as its best
 * MX (E.4). This is also the backup-MX rule: as a lower-preference MX we deliver only to better ones, never
 * to ourselves or worse. The check is skipped for relays, as qmail does.
 */
export async function resolveTargets(
  host: string,
  route: Route,
  resolver: RemoteResolver,
  ipme: ReadonlySet<string>,
  opts: ResolveOptions = {},
): Promise<Targets> {
  let targets: Target[];
  const name = route.kind === 'relay' ? route.relay : host;
  try {
    if (route.kind === 'relay' || ipLiteral(host) !== null) {
      targets = await addresses(name, resolver, 0);
    } else {
      let mx: Array<{ exchange: string; priority: number }> = [];
      try {
        mx = await resolver.resolveMx(host);
      } catch (err) {
        if (codeOf(err) !== 'ENODATA') throw err; // NXDOMAIN: permanent; others temporary
      }
      // RFC 7505 3: a single MX with an empty exchange ("." on the wire) is a null MX.
      if (mx.some((m) => m.exchange === '' || m.exchange === '.')) {
        return { kind: 'permanent', report: nullMxReport(host) };
      }
      if (mx.length === 0)
        targets = await addresses(host, resolver, 0); // the implicit MX (RFC 5321 5.1)
      else {
        targets = [];
        for (const m of shuffleEqual(
          mx.map((m) => ({ ...m, pref: m.priority })),
          opts.random ?? Math.random,
        )) {
          try {
            targets.push(...(await addresses(m.exchange, resolver, m.priority)));
          } catch (err) {
            if (!isHardDnsError(err)) throw err; // an MX without an address is skipped, as qmail does
          }
        }
      }
    }
  } catch (err) {
    return isHardDnsError(err)
      ? { kind: 'permanent', report: permNoDns(name) }
      : { kind: 'temporary', report: TEMP_DNS };
  }
  if (targets.length === 0) return { kind: 'permanent', report: permNoDns(name) };
  if (route.kind === 'relay') return { kind: 'ok', targets };
  let prefme = Infinity;
  for (const t of targets) if (ipme.has(t.ip) && t.pref < prefme) prefme = t.pref;
  const usable = targets.filter((t) => t.pref < prefme);
  if (usable.length === 0) return { kind: 'permanent', report: AMBIGUOUS_MX };
  return { kind: 'ok', targets: usable };
}
