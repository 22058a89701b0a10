// Password logins for smtpd AUTH, POP3 and checkpassword: `user@domain` or `user%domain` → the mailbox or null.
import { splitLogin } from './names.js';
import { openDirectory } from './open.js';
import { verifyPassword } from './password.js';
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
}

/**
 * The mailbox whose password matches, or null (unknown login, wrong password, no password set, or the service
 * blocked by a flag). Alias domains log in to their domain's mailboxes. Trouble (database down) throws.
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
    if (!dom) return null;
    const m = await dir.getMailbox(dom.name, parts[0]);
    if (!m || m.passwordHash === '') return null;
    if (opts.service !== undefined && m.flags.includes(BLOCK[opts.service])) return null;
    if (!(await verifyPassword(password, m.passwordHash))) return null;
    if (opts.recordLogin === false) return m;
    const at = new Date((opts.now ?? Date.now)());
    await dir.recordLogins([{ domain: m.domain, local: m.local, at }]);
    return m.lastLogin !== null && m.lastLogin >= at ? m : { ...m, lastLogin: at }; // as recordLogins left it
  } finally {
    if (!opts.directory) await dir.close();
  }
}
