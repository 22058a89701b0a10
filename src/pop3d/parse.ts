// The untrusted input of POP3, parsed in one place: command lines, message numbers, login names, SASL PLAIN.
import { asciiLower } from '../core/index.js';

export interface Command {
  /** Upper-cased keyword (RFC 1939 section 3: case-insensitive). */
  readonly verb: string;
  /** Space-separated arguments. */
  readonly args: readonly string[];
  /** Everything after the keyword and one space, unchanged (PASS: a password may contain spaces). */
  readonly rest: string;
}

/** A command line without its CRLF → the command, or null for an empty or non-printable keyword. */
export function parseCommand(line: string): Command | null {
  const sp = line.indexOf(' ');
  const word = sp < 0 ? line : line.slice(0, sp);
  if (!/^[A-Za-z]{1,8}$/.test(word)) return null;
  const rest = sp < 0 ? '' : line.slice(sp + 1);
  const args = rest.split(' ').filter((a) => a !== '');
  return { verb: word.toUpperCase(), args, rest };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A PASS argument as the password the user typed: command lines are read as latin1 (one char per octet), and
 * clients send a non-ASCII password as UTF-8, which is how the directory hashes passwords (and how AUTH PLAIN
 * decodes). Octets that are not valid UTF-8 are left as they came (a latin1 password from an older system).
 */
export function passwordText(rest: string): string {
  if (!/[\u0080-\u00ff]/.test(rest)) return rest;
  try {
    return strictUtf8.decode(Buffer.from(rest, 'latin1'));
  } catch {
    return rest;
  }
}

/** RFC 1939: a message-number is a decimal number ≥ 1 (no sign, no spaces); null if not. */
export function parseNumber(s: string | undefined, min = 1): number | null {
  if (s === undefined || !/^\d{1,9}$/.test(s)) return null;
  const n = Number(s);
  return n >= min ? n : null;
}

/**
 * Login names: `user@domain`, vpopmail's `user%domain` → `user@domain` (domain lower-cased), a bare `user` gets
 * the default domain when one is configured. Null when the name cannot be a mailbox.
 */
export function normaliseLogin(raw: string, defaultDomain?: string): string | null {
  if (raw === '' || raw.length > 320 || /\s/.test(raw) || hasControl(raw)) return null;
  let name = raw;
  if (!name.includes('@')) {
    const pct = name.lastIndexOf('%');
    if (pct >= 0) name = `${name.slice(0, pct)}@${name.slice(pct + 1)}`;
  }
  const at = name.lastIndexOf('@');
  if (at < 0) {
    if (!defaultDomain) return null;
    return `${name}@${asciiLower(defaultDomain)}`;
  }
  const local = name.slice(0, at);
  const domain = name.slice(at + 1);
  if (local === '' || domain === '' || domain.includes('@')) return null;
  return `${local}@${asciiLower(domain)}`;
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

export interface PlainCredentials {
  readonly authzid: string;
  readonly authcid: string;
  readonly password: string;
}

/** RFC 4616: base64 of `authzid NUL authcid NUL passwd`; null when malformed. */
export function decodePlain(b64: string): PlainCredentials | null {
  const s = b64.trim();
  if (s === '=' || !/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  const text = Buffer.from(s, 'base64').toString('utf8');
  const parts = text.split('\0');
  if (parts.length !== 3) return null;
  const [authzid = '', authcid = '', password = ''] = parts;
  if (authcid === '' || password === '') return null;
  return { authzid, authcid, password };
}

/** Loopback client addresses (where plaintext logins are allowed without TLS by default). */
export function isLoopback(ip: string): boolean {
  return ip === '::1' || /^(::ffff:)?127\./.test(ip);
}
