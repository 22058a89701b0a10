// DNS blocklists on a listener, as rblsmtpd (ucspi-tcp) decides and answers: RBLSMTPD first, then each list in turn.
import { isIPv4, isIPv6 } from 'node:net';
import { errText } from '../core/index.js';
import type { Reader } from '../lineio/index.js';
import type { SessionEnv } from './policy.js';

/** The two lookups rblsmtpd makes (node:dns/promises Resolver has them). */
export interface RblResolver {
  /** TXT records of a name: listed (rblsmtpd -r). */
  resolveTxt(name: string): Promise<string[][]>;
  /** A records of a name: anti-listed (rblsmtpd -a). */
  resolve4(name: string): Promise<string[]>;
  /** Gives up the lookups still running (the deadline passed). */
  cancel?(): void;
}

/** One source, in the order of the listener line: `rbl=BASE` (-r) or `rblallow=BASE` (-a). */
export interface RblSource {
  readonly base: string;
  readonly allow: boolean;
}

/** A listener's blocklist settings (docs/LISTENERS.md). */
export interface RblConfig {
  readonly sources: readonly RblSource[];
  /** rblsmtpd -b: 553 instead of 451 for a listed address. */
  readonly bounce: boolean;
  /** rblsmtpd -c: a lookup that fails temporarily counts as listed (451). Default -C: as not listed. */
  readonly failClosed: boolean;
  /** rblsmtpd -t: the limited conversation is dropped after this many seconds; 0 = the refusal instead of a greeting. */
  readonly timeoutSeconds: number;
  /** quail's own: all lookups together get this long; past it they count as failed temporarily (served, by -C). */
  readonly deadlineMs: number;
  readonly resolver: () => RblResolver;
}

/** The verdict: serve the client, or refuse it with this reply line (without CRLF) and why. */
export type RblVerdict =
  | { readonly block: false; readonly why?: string }
  | { readonly block: true; readonly reply: string; readonly why: string };

/** `d.c.b.a.` for IPv4, the 32 nibbles in reverse for IPv6 (fehcom's ucspi-tcp6); undefined for anything else. */
export function reverseIp(ip: string): string | undefined {
  const v4 = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(v4)) return `${v4.split('.').reverse().join('.')}.`;
  if (!isIPv6(ip)) return undefined;
  const [head = '', tail = ''] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  if (h.some((g) => g.includes('.')) || t.some((g) => g.includes('.'))) return undefined;
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const hex = groups.map((g) => g.padStart(4, '0')).join('');
  return `${hex.split('').reverse().join('.')}.`;
}

/** rblsmtpd's reply: 451 or 553, the text cut at 200 bytes, anything outside 32..126 made `?`. */
function replyLine(code: 451 | 553, text: string): string {
  return `${code} ${text.slice(0, 200).replace(/[^\x20-\x7e]/g, '?')}`;
}

const notFound = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
};

/**
 * rblsmtpd's decision. RBLSMTPD in the environment (tcp.smtp) decides alone: set and empty = not blocked, text =
 * blocked with it (451), `-text` = blocked with 553. Otherwise each source in turn until one lists (TXT: blocked,
 * the TXT text said) or anti-lists (A: served); a lookup failing temporarily is skipped (-C) or blocks with 451 and
 * "temporary RBL lookup error" (-c), and so are the lookups still running at the deadline.
 */
export async function rblVerdict(env: SessionEnv, config: RblConfig): Promise<RblVerdict> {
  const set = env['RBLSMTPD'];
  if (set !== undefined) {
    if (set === '') return { block: false, why: 'RBLSMTPD empty' };
    if (set.startsWith('-')) return { block: true, reply: replyLine(553, set.slice(1)), why: 'RBLSMTPD' };
    return { block: true, reply: replyLine(451, set), why: 'RBLSMTPD' };
  }
  const rev = reverseIp(env['TCPREMOTEIP'] ?? '0.0.0.0');
  if (rev === undefined || config.sources.length === 0) return { block: false };
  const resolver = config.resolver();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), config.deadlineMs);
  });
  // a temporary failure: -c blocks with 451 even under -b, -C goes on as if not listed / anti-listed
  let mustNotBounce = false;
  const tempFail = (allow: boolean, why: string): RblVerdict | undefined => {
    mustNotBounce = true;
    if (allow) return config.failClosed ? undefined : { block: false, why };
    return config.failClosed ? { block: true, reply: replyLine(451, 'temporary RBL lookup error'), why } : undefined;
  };
  try {
    for (const { base, allow } of config.sources) {
      const name = rev + base;
      const lookup = allow ? resolver.resolve4(name) : resolver.resolveTxt(name);
      let got: string[] | string[][] | 'deadline';
      try {
        got = await Promise.race([lookup, deadline]);
      } catch (err) {
        if (notFound(err)) continue;
        const v = tempFail(allow, `${base}: ${errText(err)}`);
        if (v) return v;
        continue;
      }
      if (got === 'deadline') {
        lookup.catch(() => undefined);
        resolver.cancel?.();
        // past the deadline no further list is asked: the rest would wait on the same slow server
        const why = `${base}: no answer within ${config.deadlineMs / 1000} s`;
        return tempFail(allow, why) ?? { block: false, why };
      }
      if (got.length === 0) continue;
      if (allow) return { block: false, why: `anti-listed by ${base}` };
      const text = (got as string[][]).map((parts) => parts.join('')).join('');
      const code = config.bounce && !mustNotBounce ? 553 : 451;
      return { block: true, reply: replyLine(code, text), why: `listed by ${base}` };
    }
    return { block: false };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * rblsmtpd's limited conversation: HELO/EHLO get 250, QUIT 221 and the end, every other command the refusal; the
 * client is dropped after `timeoutSeconds` whatever it does. With 0 the refusal is said instead of the greeting.
 * `greeting` is the host name after 220/250/221 (rblsmtpd says `rblsmtpd.local`). Returns how it ended.
 */
export async function rblConversation(
  reader: Reader,
  write: (text: string) => void,
  reply: string,
  greeting: string,
  timeoutSeconds: number,
): Promise<'quit' | 'eof' | 'timeout'> {
  if (timeoutSeconds === 0) {
    write(`${reply}\r\n`);
    return 'timeout';
  }
  const end = Date.now() + timeoutSeconds * 1000;
  write(`220 ${greeting}\r\n`);
  for (;;) {
    const left = end - Date.now();
    if (left <= 0) return 'timeout';
    const got = await reader.line(left, 1000);
    if (got === 'eof') return 'eof';
    if (got === 'timeout') return 'timeout';
    const verb = got === 'too-long' ? '' : (/^\S*/.exec(got.line.toString('latin1'))?.[0] ?? '').toLowerCase();
    if (verb === 'quit') {
      write(`221 ${greeting}\r\n`);
      return 'quit';
    }
    write(verb === 'helo' || verb === 'ehlo' ? `250 ${greeting}\r\n` : `${reply}\r\n`);
  }
}
