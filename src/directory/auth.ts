// Password logins for smtpd AUTH, POP3 and checkpassword: `user@domain` or `user%domain` → the mailbox or null.
import { splitLogin } from './names.js';
import { openDirectory } from './open.js';
import { costsAtLeastDummy, DUMMY_HASH, verifyPassword, type PasswordVerifier } from './password.js';
import type { Directory, Mailbox, MailboxFlag } from './types.js';

export type Service = 'pop' | 'imap' | 'smtp';

const BLOCK: Record<Service, MailboxFlag> = { pop: 'no-pop', imap: 'no-imap', smtp: 'no-smtp-auth' };

export interface AuthOptions {
  /** An open directory to use (else it is opened from root and closed again). */
  readonly directory?: Directory;
  /** --directory URL when opening. */
  readonly url?: string;
  /** Refuse mailboxes with the service's flag (no-pop, no-imap, no-smtp-auth). */
  readonly service?: Service;
  /** Record the login time (default true). */
  readonly recordLogin?: boolean;
  readonly now?: () => number;
  /** The password check (default verifyPassword). */
  readonly verify?: PasswordVerifier;
}

/**
 * The name the failed-login throttle (src/throttle) counts a login under: `local@domain` with the domain resolved
 * through alias domains exactly as `authenticate` resolves it, so `joe@alias.example` and `joe@example.com` share one
 * count. A login that names no directory domain, or a directory that cannot answer, is counted as typed (the throttle
 * still folds case and `%`).
 */
export async function throttleLogin(dir: Pick<Directory, 'resolveDomain'>, login: string): Promise<string> {
  const parts = splitLogin(login);
  if (!parts) return login;
  try {
    const dom = await dir.resolveDomain(parts[1]);
    return dom === null ? login : `${parts[0]}@${dom.name}`;
  } catch {
    return login;
  }
}

/**
 * The mailbox whose password matches, or null (unknown login, wrong password, no password set, or the service
 * blocked by a flag). Alias domains log in to their domain's mailboxes. Trouble (database down) throws.
 *
 * Every login with a domain part costs one password verification, whatever the answer: a mailbox's own hash, or
 * DUMMY_HASH (quail's scheme and cost) for an unknown domain or mailbox or one without a password; the service flag
 * is looked at only after it. So SMTP AUTH and POP3 answer an unknown login no sooner than a wrong password, and a
 * blocked mailbox no sooner than an open one. A mailbox whose hash costs less than DUMMY_HASH (one imported with a
 * crypt(3) hash: `$1$`, `$5$`, `$6$`, bcrypt, DES; a cheaper scrypt) costs its own verification on success, and its
 * own plus DUMMY_HASH's on a wrong password: so a wrong password is answered no sooner than an unknown login either,
 * and a right one is not slowed. The hash stored is never changed.
 */
export async function authenticate(
  root: string,
  login: string,
  password: string,
  opts: AuthOptions = {},
): Promise<Mailbox | null> {
  const parts = splitLogin(login);
  if (!parts) return null;
  const dir = opts.directory ?? (await openDirectory({ root, ...(opts.url === undefined ? {} : { url: opts.url }) }));
  try {
    const dom = await dir.resolveDomain(parts[1]);
    const m = dom ? await dir.getMailbox(dom.name, parts[0]) : null;
    const hash = m && m.passwordHash !== '' ? m.passwordHash : DUMMY_HASH;
    const verify = opts.verify ?? verifyPassword;
    const matches = await verify(password, hash);
    if (!m || hash === DUMMY_HASH) return null;
    if (!matches) {
      // a hash cheaper than the dummy's (imported md5-crypt, SHA-crypt, bcrypt...) would answer a wrong password
      // sooner than an unknown login: the failure costs the dummy's verification too (a success never does)
      if (!costsAtLeastDummy(hash)) await verify(password, DUMMY_HASH);
      return null;
    }
    if (opts.service !== undefined && m.flags.includes(BLOCK[opts.service])) return null;
    if (opts.recordLogin === false) return m;
    const at = new Date((opts.now ?? Date.now)());
    await dir.recordLogins([{ domain: m.domain, local: m.local, at }]);
    return m.lastLogin !== null && m.lastLogin >= at ? m : { ...m, lastLogin: at }; // as recordLogins left it
  } finally {
    if (!opts.directory) await dir.close();
  }
}
