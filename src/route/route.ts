// Pure routing of one envelope recipient (docs/QMAIL.md A.1-A.9) and the bounce-time prefix removal (F.6).
import { asciiLower } from '../core/index.js';
import type { RouteControl, RouteDecision } from './types.js';

type VdEntry = RouteControl['virtualdomains'] extends ReadonlyMap<string, infer V> ? V : never;

const q = (s: string): string => JSON.stringify(s);

/** What kind of virtualdomains candidate starts at position p of addr (A.5). */
function candidateKind(p: number, at: number, len: number): string {
  if (p === 0) return 'address pattern';
  if (p === at + 1) return 'domain pattern';
  if (p === len) return 'catch-all (empty) pattern';
  return 'suffix pattern';
}

/**
 * Start positions of the virtualdomains candidates of addr, in qmail-send's order (A.5): the whole
 * address, the domain, every '.'-suffix of the domain left to right, then the empty string.
 */
function candidatePositions(addr: string, at: number): number[] {
  const out: number[] = [];
  for (let p = 0; p <= addr.length; p++) {
    if (p === 0 || p === at + 1 || p === addr.length || (p > at && addr[p] === '.')) out.push(p);
  }
  return out;
}

function describeEntry(e: VdEntry): string {
  return `control/virtualdomains line ${e.line} ${q(`${e.pattern}:${e.value}`)}`;
}

/**
 * Routes one recipient exactly as qmail-send's rewrite() does: envnoathost, percent hack, locals,
 * virtualdomains (address, domain, .suffixes, empty; empty value = exception), else remote.
 */
export function route(recipient: string, rc: RouteControl): RouteDecision {
  const why: string[] = [];
  let addr = recipient;
  let i = addr.lastIndexOf('@');

  // A.1: no '@' at all: append @envnoathost.
  if (i < 0) {
    i = addr.length;
    addr = `${addr}@${rc.envnoathost}`;
    why.push(`${q(recipient)} has no @: appended @${rc.envnoathost} (envnoathost) giving ${q(addr)}`);
  }

  // A.2: percent hack, repeated while the domain after the last converted '@' is listed.
  while (rc.percenthack.has(asciiLower(addr.slice(i + 1)))) {
    const host = addr.slice(i + 1);
    const j = addr.slice(0, i).lastIndexOf('%');
    if (j < 0) {
      why.push(`${q(host)} is in control/percenthack but ${q(addr.slice(0, i))} has no %: percent hack stops`);
      break;
    }
    const before = addr;
    addr = `${addr.slice(0, j)}@${addr.slice(j + 1, i)}`;
    i = j;
    why.push(`${q(host)} is in control/percenthack: ${q(before)} rewritten to ${q(addr)}`);
  }

  // A.3: the domain is the text after the last '@'.
  const at = addr.lastIndexOf('@');
  const domain = addr.slice(at + 1);
  const lower = asciiLower(domain);

  // A.4: locals, exact ASCII-case-insensitive match.
  if (rc.locals.has(lower)) {
    const src = rc.localsSource;
    const where =
      src === undefined
        ? 'control/locals'
        : src.file === 'me'
          ? 'control/me (control/locals is missing, so me is the only local domain)'
          : `control/locals line ${src.lines.get(lower) ?? '?'}`;
    why.push(`domain ${q(domain)} is listed in ${where}`);
    why.push(`local channel, address unchanged: ${addr}`);
    return { channel: 'local', address: addr, why };
  }

  // A.5-A.7: virtualdomains; the first candidate present decides.
  const tried: string[] = [];
  for (const p of candidatePositions(addr, at)) {
    const cand = addr.slice(p);
    tried.push(q(cand));
    const e = rc.virtualdomains.get(asciiLower(cand));
    if (e === undefined) continue;
    const kind = candidateKind(p, at, addr.length);
    if (e.value === '') {
      why.push(`domain ${q(domain)} is not in control/locals`);
      why.push(`${describeEntry(e)} (${kind} ${q(e.pattern)}) has an empty prefix: an exception, not virtual`);
      why.push(`remote channel, address unchanged: ${addr}`);
      return { channel: 'remote', address: addr, why };
    }
    const rewritten = `${e.value}-${addr}`;
    why.push(`domain ${q(domain)} is not in control/locals`);
    why.push(`${describeEntry(e)} (${kind} ${q(e.pattern)}) matches ${q(cand)}: prefix ${q(e.value)}`);
    why.push(`local channel as ${rewritten}`);
    return { channel: 'local', address: rewritten, why };
  }

  // A.8: everything else is remote.
  why.push(`domain ${q(domain)} is not in control/locals`);
  why.push(`no control/virtualdomains pattern matches (tried ${tried.join(', ')})`);
  why.push(`remote channel, address unchanged: ${addr}`);
  return { channel: 'remote', address: addr, why };
}

/**
 * The failed address as a bounce names it (F.6): search virtualdomains by the recipient's domain like
 * A.5 but without the address-pattern candidate; if the first entry found has a non-empty prefix P and
 * the address starts with `P-` (case-sensitive, as qmail compares), remove it.
 */
export function stripVirtualPrefix(address: string, rc: RouteControl): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address;
  const domain = address.slice(at + 1);
  for (let p = 0; p <= domain.length; p++) {
    if (p !== 0 && p !== domain.length && domain[p] !== '.') continue;
    const e = rc.virtualdomains.get(asciiLower(domain.slice(p)));
    if (e === undefined) continue;
    if (e.value === '') return address;
    if (!address.startsWith(`${e.value}-`)) return address;
    return address.slice(e.value.length + 1);
  }
  return address;
}
