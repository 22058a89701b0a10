// Strict MAIL/RCPT arguments (RFC 5321 4.1.2, RFC 1870, 6152, 6531, 4954): quail's default; QUAIL_LOOSE="1" is qmail's B.1.
import { isIPv6 } from 'node:net';
import { parseEnvelopeArg } from './address.js';
import type { Reply } from './replies.js';

/** What a strict MAIL argument gave: the sender (`''` for `<>`) and the RFC 1870 size, if announced. */
export type StrictMail =
  | { readonly ok: true; readonly address: string; readonly size?: number }
  | { readonly ok: false; readonly reply: Reply };
export type StrictRcpt =
  { readonly ok: true; readonly address: string } | { readonly ok: false; readonly reply: Reply };

type Role = 'sender' | 'recipient';

/** RFC 5321 4.1.2 atext, plus the UTF-8 octets RFC 6531 allows (command lines are read one char per octet). */
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u00ff]$/;
/** Let-dig and the hyphen inside a domain label; octets >= 0x80 for U-labels (RFC 6531 3.3). */
const LETDIG = /^[A-Za-z0-9\u0080-\u00ff]$/;

class Syntax extends Error {}

/** A cursor over the argument: each method consumes one grammar element or throws Syntax with what is wrong. */
class Scanner {
  i = 0;
  constructor(readonly s: string) {}

  /** The current character (a method, not a getter: TypeScript would narrow a getter across calls that move i). */
  ch(): string | undefined {
    return this.s[this.i];
  }

  fail(what: string): never {
    throw new Syntax(what);
  }

  /** sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. */
  domain(): void {
    for (;;) {
      const start = this.i;
      while (LETDIG.test(this.ch() ?? '') || this.ch() === '-') this.i++;
      const label = this.s.slice(start, this.i);
      if (label === '') {
        if (this.s[start - 1] === '.') this.fail('the domain has an empty label (".." or a trailing ".")');
        this.fail(
          this.ch() === undefined ? 'the domain is missing or ends early' : `unexpected "${this.ch()}" in the domain`,
        );
      }
      if (label.startsWith('-') || label.endsWith('-'))
        this.fail(`the domain label "${label}" starts or ends with "-"`);
      if (this.ch() !== '.') return;
      this.i++;
    }
  }

  /** "[" IPv4 / "IPv6:" IPv6 / tag ":" dcontent "]" (RFC 5321 4.1.3). */
  addressLiteral(): void {
    const close = this.s.indexOf(']', this.i);
    if (close < 0) this.fail('the address literal has no closing "]"');
    const inner = this.s.slice(this.i + 1, close);
    this.i = close + 1;
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(inner)) {
      if (inner.split('.').every((n) => Number(n) <= 255)) return;
      this.fail(`[${inner}] is not an IPv4 address`);
    }
    const m = /^([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?):([\x21-\x5a\x5e-\x7e]+)$/.exec(inner);
    if (!m) this.fail(`[${inner}] is not an address literal ([192.0.2.1] or [IPv6:2001:db8::1])`);
    if (m[1]?.toLowerCase() === 'ipv6' && !isIPv6(m[2] ?? '')) this.fail(`[${inner}] is not an IPv6 address`);
  }

  /** Dot-string / Quoted-string. */
  localPart(): void {
    if (this.ch() === '"') {
      this.i++;
      for (;;) {
        const c = this.ch();
        if (c === undefined) this.fail("the quoted local part has no closing '\"'");
        this.i++;
        if (c === '"') return;
        if (c === '\\') {
          const n = this.ch();
          if (n === undefined || n < ' ' || n > '~')
            this.fail('a backslash in the quoted local part escapes nothing printable');
          this.i++;
        } else if (c < ' ' || c > '~') {
          if (c < '\u0080') this.fail('a control character in the quoted local part');
        }
      }
    }
    for (;;) {
      const start = this.i;
      while (ATEXT.test(this.ch() ?? '')) this.i++;
      if (this.i === start) {
        if (this.ch() === '.' || start === 0 || this.s[start - 1] === '.')
          this.fail('the local part has an empty part between dots (or starts or ends with ".")');
        this.fail(
          this.ch() === undefined
            ? 'the address ends early'
            : `unexpected "${this.ch()}" in the local part (quote it: "...")`,
        );
      }
      if (this.ch() !== '.') return;
      this.i++;
    }
  }
}

/**
 * `FROM:<path> [params]` or `TO:<path> [params]`: the path checked against RFC 5321 4.1.2, the params split
 * into keyword and value (RFC 5321 4.1.2 esmtp-param). A space after the colon is tolerated (widely sent, and
 * harmless); everything else that the grammar does not allow is refused with what is wrong.
 */
function strictPath(arg: string, role: Role): { address: string; params: Map<string, string> } | Reply {
  const prefix = role === 'sender' ? 'FROM:' : 'TO:';
  const bad = (what: string): Reply => syntaxReply(role, what);
  if (arg.slice(0, prefix.length).toUpperCase() !== prefix) return bad(`the argument must start with ${prefix}`);
  const rest = arg.slice(prefix.length).replace(/^ +/, '');
  const sc = new Scanner(rest);
  try {
    if (sc.ch() !== '<') sc.fail('the address must be enclosed in <>');
    sc.i = 1;
    if (sc.ch() === '>') {
      if (role === 'recipient') sc.fail('the recipient address is empty');
    } else {
      if (sc.ch() === '@') {
        // A-d-l ":" (obsolete source route; RFC 5321 4.1.2 and C: accepted and ignored)
        for (;;) {
          sc.i++;
          sc.domain();
          if (sc.ch() === ',' && sc.s[sc.i + 1] === '@') {
            sc.i++;
            continue;
          }
          if (sc.ch() !== ':') sc.fail('a source route (@host,...:) without the mailbox after its ":"');
          sc.i++;
          break;
        }
      }
      const localStart = sc.i;
      sc.localPart();
      const local = sc.s.slice(localStart, sc.i);
      if (sc.ch() === '@') {
        sc.i++;
        if (sc.ch() === '[') sc.addressLiteral();
        else sc.domain();
      } else if (!(
        role === 'recipient' &&
        localStart === 1 &&
        local.toLowerCase() === 'postmaster' &&
        sc.ch() === '>'
      )) {
        // RFC 5321 4.1.1.3: <Postmaster> without a domain is the one recipient that needs none.
        sc.fail(
          sc.ch() === undefined || sc.ch() === '>'
            ? 'the address has no @domain'
            : `unexpected "${sc.ch()}" in the address`,
        );
      }
      if (sc.ch() === undefined) sc.fail('the address has no closing ">"');
      if (sc.ch() !== '>') sc.fail(`unexpected "${sc.ch()}" in the address`);
    }
  } catch (err) {
    if (err instanceof Syntax) return bad(err.message);
    throw err;
  }
  const after = rest.slice(sc.i + 1);
  if (after !== '' && !after.startsWith(' ')) return bad(`no space between ">" and "${after}"`);
  const params = new Map<string, string>();
  for (const word of after.split(' ')) {
    if (word === '') continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$/.exec(word);
    if (!m) return [501, '5.5.4', `malformed parameter "${word}": write KEYWORD or KEYWORD=VALUE (#5.5.4)`];
    const key = (m[1] as string).toUpperCase();
    if (params.has(key)) return [501, '5.5.4', `parameter ${key} given twice (#5.5.4)`];
    params.set(key, m[2] ?? '');
  }
  // The address itself as qmail reads it (quotes removed, source route dropped); its length is checked after the
  // localiphost rewrite (session-envelope.ts).
  return { address: parseEnvelopeArg(rest).address, params };
}

/** The parameters MAIL accepts: those of the extensions EHLO advertises. */
const MAIL_PARAMS = 'SIZE, BODY, SMTPUTF8 and AUTH';

/** MAIL FROM, strictly: RFC 5321 path, and only SIZE, BODY, SMTPUTF8, AUTH (each with a valid value). */
export function parseStrictMail(arg: string): StrictMail {
  const p = strictPath(arg, 'sender');
  if (!('address' in p)) return { ok: false, reply: p };
  let size: number | undefined;
  for (const [key, value] of p.params) {
    switch (key) {
      case 'SIZE':
        // RFC 1870 6: size-value ::= 1*20DIGIT
        if (!/^\d{1,20}$/.test(value))
          return {
            ok: false,
            reply: [501, '5.5.4', `SIZE=${value} is not a size: write SIZE=<number of bytes> (#5.5.4)`],
          };
        size = Number(value);
        break;
      case 'BODY':
        // RFC 6152: 7BIT or 8BITMIME (BINARYMIME needs CHUNKING, which is not offered)
        if (!/^(7BIT|8BITMIME)$/i.test(value))
          return {
            ok: false,
            reply: [501, '5.5.4', `BODY=${value} is not supported: write BODY=7BIT or BODY=8BITMIME (#5.5.4)`],
          };
        break;
      case 'SMTPUTF8':
        // RFC 6531 3.4: no value
        if (value !== '') return { ok: false, reply: [501, '5.5.4', 'SMTPUTF8 takes no value (#5.5.4)'] };
        break;
      case 'AUTH':
        // RFC 4954 5: AUTH=<mailbox in xtext> or AUTH=<>; accepted and not used (the session's own login counts)
        if (value === '')
          return { ok: false, reply: [501, '5.5.4', 'AUTH= needs a value (<> or an xtext address) (#5.5.4)'] };
        break;
      default:
        return {
          ok: false,
          reply: [
            555,
            '5.5.4',
            `MAIL FROM parameter ${key} is not supported; this server knows ${MAIL_PARAMS} (#5.5.4)`,
          ],
        };
    }
  }
  return size === undefined ? { ok: true, address: p.address } : { ok: true, address: p.address, size };
}

/** RCPT TO, strictly: RFC 5321 path (or <Postmaster>), and no parameters (no DSN or other RCPT extension is offered). */
export function parseStrictRcpt(arg: string): StrictRcpt {
  const p = strictPath(arg, 'recipient');
  if (!('address' in p)) return { ok: false, reply: p };
  const [key] = p.params.keys();
  if (key !== undefined)
    return {
      ok: false,
      reply: [555, '5.5.4', `RCPT TO parameter ${key} is not supported; this server takes none (#5.5.4)`],
    };
  return { ok: true, address: p.address };
}

/** 501 with RFC 3463's X.1.7 (sender) or X.1.3 (recipient) syntax code, what is wrong, and the form to use. */
function syntaxReply(role: Role, what: string): Reply {
  return role === 'sender'
    ? [501, '5.1.7', `bad sender address syntax: ${what}; write MAIL FROM:<user@domain> or MAIL FROM:<> (#5.1.7)`]
    : [501, '5.1.3', `bad recipient address syntax: ${what}; write RCPT TO:<user@domain> (#5.1.3)`];
}
