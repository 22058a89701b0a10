// qmail-smtpd's envelope-address parsing (docs/QMAIL.md B.1) and the [ip] → localiphost rewrite (B.2).
import { ipScan } from '../core/index.js';

/** Result of parsing a MAIL/RCPT argument: the address and the ESMTP parameters after it. */
export interface ParsedArg {
  readonly address: string;
  /** ESMTP parameters (RFC 5321 4.1.2) after the closing '>', keys upper-cased; qmail ignores them. */
  readonly params: ReadonlyMap<string, string>;
}

/**
 * qmail-smtpd's addrparse refuses an address with `555 syntax error (#5.5.4)` when it is longer than 900 bytes with
 * its terminating NUL counted, so 900 bytes is already too long; it checks after the [ip] → localiphost rewrite.
 */
const MAX_ADDRESS = 900;

/** Whether `address` (after the localiphost rewrite) is too long for qmail-smtpd (MAX_ADDRESS). */
export function addressTooLong(address: string): boolean {
  return Buffer.byteLength(address, 'latin1') + 1 > MAX_ADDRESS;
}

/**
 * B.1: the address is the text after the first '<' up to the next unquoted '>'; without '<', the text
 * after the first ':' (leading spaces skipped) up to the next space. A leading source route is dropped,
 * double quotes are removed and a backslash makes the next character literal. The length is checked later
 * (addressTooLong), after the localiphost rewrite.
 */
export function parseEnvelopeArg(arg: string): ParsedArg {
  let terminator = '>';
  let i = arg.indexOf('<');
  let rest: string;
  if (i >= 0) rest = arg.slice(i + 1);
  else {
    terminator = ' ';
    i = arg.indexOf(':');
    rest = i >= 0 ? arg.slice(i + 1) : '';
    rest = rest.replace(/^ +/, '');
  }
  if (rest.startsWith('@')) {
    // Source route "@a,@b:" (RFC 5321 4.1.2 obsolete syntax): drop up to and including the first ':'.
    const colon = rest.indexOf(':');
    rest = colon >= 0 ? rest.slice(colon + 1) : '';
  }
  let address = '';
  let esc = false;
  let quoted = false;
  let end = rest.length;
  for (let k = 0; k < rest.length; k++) {
    const ch = rest[k] as string;
    if (esc) {
      address += ch;
      esc = false;
      continue;
    }
    if (!quoted && ch === terminator) {
      end = k + 1;
      break;
    }
    if (ch === '\\') esc = true;
    else if (ch === '"') quoted = !quoted;
    else address += ch;
  }
  return { address, params: terminator === '>' ? parseParams(rest.slice(end)) : new Map() };
}

function parseParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const word of text.split(' ')) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    out.set(key, eq < 0 ? '' : word.slice(eq + 1));
  }
  return out;
}

/**
 * A dotted quad inside brackets ("[192.0.2.1]") read as qmail's ip_scanbracket reads it, or null: each part any
 * number of decimal digits, kept modulo 256 (ip.c stores it in a byte), so `[0127.0.0.1]` and `[383.0.0.1]` are
 * 127.0.0.1.
 */
function bracketedIpv4(domain: string): string | null {
  return domain.startsWith('[') && domain.endsWith(']') ? ipScan(domain.slice(1, -1)) : null;
}

/** B.2: `user@[ip]` where ip is one of this host's addresses becomes `user@<localiphost>`. */
export function applyLocalIpHost(address: string, localiphost: string, isLocalIp: (ip: string) => boolean): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address;
  const ip = bracketedIpv4(address.slice(at + 1));
  // qmail's ipme always holds 0.0.0.0 ("always refers to this host", ipme.c)
  if (ip === null || (ip !== '0.0.0.0' && !isLocalIp(ip))) return address;
  return address.slice(0, at + 1) + localiphost;
}
