// SMTP AUTH (RFC 4954) PLAIN and LOGIN: SASL decoding, the injected password check, and which senders a login may use.
import { asciiLower } from '../core/index.js';

/** What the directory answers for a user name and password. */
export type AuthResult =
  /** relay false: the login is known but may not relay (the directory's `no-relay` flag); default true. */
  | { readonly ok: true; readonly user: string; readonly relay?: boolean }
  | { readonly ok: false; readonly temporary: boolean; readonly reason: string };

/** Checks credentials; implemented by the user directory (src/directory), injected by `start`. */
export interface Authenticator {
  verify(user: string, password: string, client: { readonly ip: string }): Promise<AuthResult>;
  /** The name the failed-login throttle counts `user` under (alias domains resolved); without it, `user` itself. */
  throttleKey?(user: string): Promise<string>;
}

/** Used until a directory exists: AUTH can never succeed, and says why (a temporary 454). */
export const NO_DIRECTORY: Authenticator = {
  verify: () => Promise.resolve({ ok: false, temporary: true, reason: 'no user directory is configured' }),
};

/**
 * vpopmail's default domain: a login without `@domain` (nor vpopmail's `user%domain`) is `user@defaultDomain`.
 * Without a default domain the login is passed on as given (the directory refuses it).
 */
export function withDefaultDomain(login: string, defaultDomain: string | undefined): string {
  if (defaultDomain === undefined || login.includes('@') || login.includes('%')) return login;
  return `${login}@${asciiLower(defaultDomain)}`;
}

/** RFC 4616: base64 of `authzid NUL authcid NUL passwd`. null = malformed. */
export function decodePlain(b64: string): { user: string; password: string } | null {
  const raw = decodeBase64(b64);
  if (raw === null) return null;
  const parts = raw.split('\0');
  if (parts.length !== 3) return null;
  const [authz, user, password] = parts as [string, string, string];
  if (user === '' || (authz !== '' && authz !== user)) return null;
  return { user, password };
}

/** Strict base64 (RFC 4954 4: a malformed response cancels the exchange). */
export function decodeBase64(s: string): string | null {
  if (s === '=') return ''; // RFC 4954: "=" is an empty initial response
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  return Buffer.from(s, 'base64').toString('utf8');
}

export const encodeBase64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** May an authenticated login use this MAIL FROM: allow, deny (553 5.7.1), or the directory is unreachable (451). */
export type SenderVerdict = 'allow' | 'deny' | 'temporary';

/**
 * The envelope senders an authenticated login may use (implemented over src/directory by `start`: its own addresses,
 * aliases that reach it, what it administers). `sender` is '' for `<>`.
 */
export interface SenderCheck {
  mayUse(login: string, sender: string): Promise<SenderVerdict>;
}

/** Without a directory: the login's own address only (compared ignoring ASCII case); never `<>`. */
export const OWN_ADDRESS_ONLY: SenderCheck = {
  mayUse: (login, sender) =>
    Promise.resolve(sender !== '' && asciiLower(sender) === asciiLower(login) ? 'allow' : 'deny'),
};

/**
 * RCPT-time verdict for one address: accept, unknown mailbox (550 5.1.1), the directory is unreachable (451), or
 * (offices, issue 16) the client is another office and the mailbox is not at this one (451: it keeps the message
 * and sends it where the mailbox is now).
 */
export type RcptVerdict = 'accept' | 'unknown' | 'temporary' | 'not-here';

/**
 * Recipient check for directory-managed domains (implemented over src/directory, injected by `start`).
 * Addresses of domains the directory does not manage are `accept` (qmail's rcpthosts rules alone apply).
 */
export interface RecipientCheck {
  /** `client`: the connecting address (an office's server is recognised by it). */
  check(address: string, client?: { readonly ip: string }): Promise<RcptVerdict>;
}
