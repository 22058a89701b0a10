// Inbound checks (RFC 7208 SPF, RFC 6376 DKIM, RFC 7489 DMARC, RFC 8617 ARC) by mailauth: the header and the verdict.
import type { Readable } from 'node:stream';
import { authenticate } from 'mailauth';
import { ToCrlf } from './crlf.js';
import { ScreenSignatures } from './screen.js';

/** mailauth's resolver: like node:dns/promises `resolve(name, type)`. */
export type DnsResolve = (name: string, type: string) => Promise<unknown>;

export interface InboundFacts {
  readonly ip: string;
  readonly helo: string;
  readonly sender: string;
  /** This host's name: the authserv-id of the Authentication-Results header (RFC 8601 2.5). */
  readonly host: string;
}

export interface InboundVerdict {
  /** `Received-SPF:` and `Authentication-Results:` fields, LF line ends. */
  readonly header: string;
  /** The sender domain's DMARC policy is reject and the message fails it (no ARC pass to excuse it). */
  readonly reject?: string;
  readonly results: { spf: string; dkim: string; dmarc: string; arc: string };
}

/** An address literal as RFC 5321 4.1.3 writes one (`[192.0.2.1]`, `[IPv6:2001:db8::1]`): nothing to replace. */
const LITERAL = /^\[(?:IPv6:)?[0-9A-Fa-f.:]+\]$/;

/**
 * A HELO argument or an envelope sender as the checks are given it, and so as mailauth writes it back into
 * `smtp.helo=`, `smtp.mailfrom=` and the SPF comment of quail's own Authentication-Results and Received-SPF.
 * RFC 8601 lets a property value be a quoted-string holding anything, so `smtp.helo="x; dkim=pass"` is valid, and
 * a reader that splits the field at ';' or white space takes it for a result. Every character a domain name (or
 * an unquoted local part) cannot hold is replaced with '_': white space, control characters, ';', '(', ')', '"',
 * '\\', ',', '<', '>', '@' in a name. A real host name, address literal or `user@domain` is left as it is (text
 * past ASCII too: SMTPUTF8 names), and the SPF domain of a valid sender never changes.
 */
export function reportable(text: string, kind: 'helo' | 'sender'): string {
  const name = (d: string): string => (LITERAL.test(d) ? d : d.replace(/[^A-Za-z0-9.\-\u0080-\uffff]|\s/g, '_'));
  if (kind === 'helo') return name(text);
  const at = text.lastIndexOf('@');
  if (at < 0) return name(text);
  const local = text.slice(0, at).replace(/[^A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~\u0080-\uffff]|\s/g, '_');
  return `${local}@${name(text.slice(at + 1))}`;
}

/**
 * Checks one message (LF line ends, without quail's Received line). DNS errors give temperror results, never a
 * rejection; an exception inside the checks, or checks that take longer than `deadlineMs` (slow DNS), give `none`
 * with the reason in a comment (the message is accepted), and the message's stream is destroyed so the checks stop
 * reading it. Never rejects its promise. The checker sees the signatures within screen.ts's limits only.
 */
export async function checkInbound(
  message: Readable,
  facts: InboundFacts,
  resolve: DnsResolve,
  deadlineMs = 30_000,
): Promise<InboundVerdict> {
  const screen = new ScreenSignatures();
  const input = message.pipe(screen).pipe(new ToCrlf());
  try {
    let timer: NodeJS.Timeout | undefined;
    const res = await Promise.race([
      authenticate(input, {
        ip: facts.ip,
        helo: reportable(facts.helo, 'helo'),
        sender: reportable(facts.sender, 'sender'),
        mta: facts.host,
        resolver: resolve as (name: string, type: string) => Promise<string[][]>,
        disableBimi: true,
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          for (const st of [message, screen, input]) st.destroy();
          reject(new Error(`no answer within ${deadlineMs / 1000} s`));
        }, deadlineMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const dkims = res.dkim.results.map((r) => r.status.result);
    const results = {
      spf: res.spf ? res.spf.status.result : 'none',
      dkim: dkims.includes('pass') ? 'pass' : (dkims[0] ?? 'none'),
      dmarc: res.dmarc ? res.dmarc.status.result : 'none',
      arc: res.arc ? res.arc.status.result : 'none',
    };
    let header = res.headers.replaceAll('\r\n', '\n');
    if (!header.endsWith('\n')) header += '\n';
    const d = res.dmarc;
    // RFC 7489 6.7: a receiver may override p=reject; quail does for a message whose ARC chain passes (a list)
    const reject =
      d && d.status.result === 'fail' && d.policy === 'reject' && results.arc !== 'pass'
        ? `sorry, the DMARC policy of ${d.domain} says to reject this message: it failed SPF and DKIM alignment`
        : undefined;
    return { header, results, ...(reject !== undefined ? { reject } : {}) };
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replace(/[()\r\n]/g, ' ').slice(0, 200);
    return {
      header: `Authentication-Results: ${facts.host}; none (checks failed: ${why})\n`,
      results: { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', arc: 'temperror' },
    };
  }
}
