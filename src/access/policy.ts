// Who may do what: the one decision the CLI and the web admin (through the root parent) both call.
import { QuailError } from '../core/index.js';
import { isForwardTarget, type Directory } from '../directory/index.js';

/**
 * Who asks. `system` is the system administrator at the command line (whoever can write the directory: root, or
 * the mail root's owner); `login` is a mailbox logged in to the web admin, with its roles read from the directory.
 */
export type Principal =
  | { readonly kind: 'system' }
  | {
      readonly kind: 'login';
      /** `local@domain`, lowercase, the domain canonical (not an alias domain). */
      readonly login: string;
      /** The mailbox has the `system-admin` flag (vpopmail's QA_ADMIN): everything. */
      readonly systemAdmin: boolean;
      /** Domains it administers: its domain_admins rows, and its own domain when it has the `domain-admin` flag. */
      readonly domains: readonly string[];
    };

/** What a request needs (domains and addresses canonical: alias domains already resolved). */
export type Need =
  /** Everything: domain administrators, admin flags, all domains. */
  | { readonly scope: 'system' }
  /** A domain's mailboxes, aliases, forwards, catch-all and quotas. */
  | { readonly scope: 'domain'; readonly domain: string }
  /** One mailbox's own settings (password, forward): the mailbox itself, or an administrator of its domain. */
  | { readonly scope: 'mailbox'; readonly address: string }
  /**
   * The password of a mailbox flagged `no-password-change` (vpopmail's NO_PASSWD_CHNG): an administrator of its
   * domain, not the mailbox itself.
   */
  | { readonly scope: 'password-locked'; readonly address: string }
  /**
   * What an alias or a forward delivers to: anyone may give an address (`user@host`, `&user@host`); a program
   * (`|...`) or a file path (`/...`, `./...`) runs or writes as the domain's delivery account — the account that owns
   * every Maildir and the queue — so only a system administrator may (qmailadmin's rule).
   */
  | { readonly scope: 'target'; readonly target: string }
  /**
   * A mailing list (src/access/lists.ts): an administrator of its domain, or a login with the list role the request
   * needs (`is`: it has it — an owner manages, a moderator decides held posts, a member reads the archive).
   */
  | {
      readonly scope: 'list';
      readonly address: string;
      readonly as: 'owner' | 'moderator' | 'member';
      readonly is: boolean;
    }
  /** A new list of the domain: its administrators, or any of its users where the domain allows it (`usersMay`). */
  | { readonly scope: 'list-create'; readonly domain: string; readonly usersMay: boolean };

/** A request the principal may not make: permanent (exit 100 at the command line, 403 on the web). */
export class AccessDenied extends QuailError {
  constructor(message: string) {
    super(message, false, '5.7.1');
    this.name = 'AccessDenied';
  }
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1);

/** The decision: undefined when allowed, else why not (a sentence that says who may). */
export function refusal(p: Principal, need: Need): string | undefined {
  if (p.kind === 'system' || p.systemAdmin) return undefined;
  switch (need.scope) {
    case 'system':
      return `${p.login} is not a system administrator; only a system administrator may do this`;
    case 'domain':
      return p.domains.includes(need.domain)
        ? undefined
        : `${p.login} is not an administrator of ${need.domain}; a system administrator can make it one (quail domain admin add ${need.domain} ${p.login})`;
    case 'mailbox':
      return p.login === need.address || p.domains.includes(domainOf(need.address))
        ? undefined
        : `${p.login} may change only its own mailbox, not ${need.address}`;
    case 'password-locked':
      return p.domains.includes(domainOf(need.address))
        ? undefined
        : `the password of ${need.address} may not be changed by its user (the mailbox has the no-password-change flag); an administrator of ${domainOf(need.address)} may set it`;
    case 'target':
      return isForwardTarget(need.target)
        ? undefined
        : `${JSON.stringify(need.target.trim())} is a program or a file path: it would run or write as the domain's delivery account, so only a system administrator may set one; give an address (user@host)`;
    case 'list':
      return need.is || p.domains.includes(domainOf(need.address))
        ? undefined
        : `${p.login} is not ${{ owner: 'an owner', moderator: 'a moderator', member: 'a member' }[need.as]} of the list ${need.address} nor an administrator of ${domainOf(need.address)}`;
    case 'list-create':
      return p.domains.includes(need.domain) || (need.usersMay && domainOf(p.login) === need.domain)
        ? undefined
        : `${p.login} may not create lists in ${need.domain}: its administrators may, or allow its users to (quail list users ${need.domain} on)`;
  }
}

/** Throws AccessDenied unless allowed. */
export function authorize(p: Principal, need: Need): void {
  const why = refusal(p, need);
  if (why !== undefined) throw new AccessDenied(why);
}

/**
 * The principal of a mailbox login, from the directory; null when the mailbox is gone, or — with `web` (a web
 * session, checked on every request) — when it is flagged `no-webmail` (vpopmail's flag that keeps it out of the web).
 */
export async function principalOf(
  dir: Directory,
  login: string,
  o: { readonly web?: boolean } = {},
): Promise<Principal | null> {
  const at = login.lastIndexOf('@');
  const m = at <= 0 ? null : await dir.getMailbox(login.slice(at + 1), login.slice(0, at));
  if (!m || (o.web === true && m.flags.includes('no-webmail'))) return null;
  const own = `${m.local}@${m.domain}`;
  const listed = await dir.adminDomainsOf(own);
  const domains = m.flags.includes('domain-admin') && !listed.includes(m.domain) ? [...listed, m.domain] : listed;
  return { kind: 'login', login: own, systemAdmin: m.flags.includes('system-admin'), domains: domains.sort() };
}
