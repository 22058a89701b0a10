// What the root offices process and quail office export take from the shared directory: every name that becomes a
// path, a file's line or a word of a command, and every account that becomes a file's owner or a delivery's uid, is
// checked as the local directory checks it (src/offices/README.md, "The shared directory is not trusted"), since any
// office, or anyone with the directory's password, writes the rows.
import {
  aliasDomainName,
  checkTarget,
  domainName,
  foreignAccountProblem,
  isForwardTarget,
  localPart,
  officeHost,
  officeName,
  officePort,
  officeTls,
} from '../directory/index.js';
import type { DeliveryAccount, Directory, DriftSource, Office } from '../directory/index.js';
export { foreignAccountProblem as badAccount } from '../directory/index.js';

const ok = (f: () => string, want: string): boolean => {
  try {
    return f() === want;
  } catch {
    return false;
  }
};

/** Why `name` may not be a domain's directory name here, or undefined. */
export function badDomainName(name: string): string | undefined {
  return ok(() => domainName(name), name) ? undefined : `the domain ${JSON.stringify(name)} is not a domain name`;
}

/** Why `local` may not name a mailbox's home (domains/DOMAIN/LOCAL) here, or undefined. */
export function badLocal(local: string): string | undefined {
  return ok(() => localPart(local), local) && local !== '.' && local !== '..'
    ? undefined
    : `the mailbox name ${JSON.stringify(local)} is not a mailbox name`;
}

/** Why `name` may not be an alias domain (a routing line) here, or undefined. */
export function badAliasName(name: string): string | undefined {
  return ok(() => aliasDomainName(name), name)
    ? undefined
    : `the alias domain ${JSON.stringify(name)} is not a domain name`;
}

/** Why `name` may not name an office (a word of a `.qmail` program line, an smtproutes host), or undefined. */
export function badOfficeName(name: string): string | undefined {
  return ok(() => officeName(name), name) ? undefined : `the office name ${JSON.stringify(name)} is not an office name`;
}

/**
 * Why an office's row may not become an smtproutes line (quail office export) or the office channel's route, report
 * and TLS policy (the keeper's table), or undefined: its name, host, port and TLS requirement.
 */
export function badOffice(o: Pick<Office, 'name' | 'host' | 'port' | 'tls'>): string | undefined {
  return (
    badOfficeName(o.name) ??
    (ok(() => officeHost(o.host), o.host)
      ? undefined
      : `its host ${JSON.stringify(o.host)} is not a host name or bracketed IP address`) ??
    (ok(() => String(officePort(o.port)), String(o.port))
      ? undefined
      : `its port ${String(o.port)} is not a number from 1 to 65535`) ??
    (ok(() => officeTls(o.tls), o.tls)
      ? undefined
      : `its TLS requirement ${JSON.stringify(o.tls)} is not verify, a CA file's absolute path or nothing`)
  );
}

/**
 * Why an alias's target may not become a forward line (`&user@host`) of a `.qmail` file, or undefined: it must be a
 * target the local directory takes, and a forward — a program or file line written from a row any office writes would
 * run or write as the qmail server's delivery account.
 */
export function badForwardTarget(target: string): string | undefined {
  if (!ok(() => checkTarget(target), target))
    return `the target ${JSON.stringify(target)} is not an alias target (a newline or control character, or not user@host)`;
  if (!isForwardTarget(target))
    return `the target ${JSON.stringify(target)} is a program or file, not a forward (add such a line to the qmail server by hand)`;
  return undefined;
}

/**
 * The directory as the keeper's check and repair (src/directory's sync, as root) may read it: domains, alias
 * domains, mailboxes and held domains whose names or accounts are refused here are left out, each said through
 * `refused` (the rest goes on).
 */
export function trustedSource(root: string, dir: Directory, refused: (why: string) => void): DriftSource {
  // One answer per account and listing: the check reads /etc/passwd and control/quailuser, and thousands of domains
  // share one account (the quail account, in the default set-up).
  const accountCheck = (): ((a: DeliveryAccount) => string | undefined) => {
    const seen = new Map<string, string | undefined>();
    return (a) => {
      const key = `${a.user}\0${a.uid}\0${a.gid}`;
      if (!seen.has(key)) seen.set(key, foreignAccountProblem(root, a));
      return seen.get(key);
    };
  };
  const keep = <T>(rows: readonly T[], what: (r: T) => string, bad: (r: T) => string | undefined): T[] =>
    keepTrusted(rows, what, bad, refused);
  return {
    listDomains: async () => {
      const badAccount = accountCheck();
      return keep(
        await dir.listDomains(),
        (d) => `domain ${JSON.stringify(d.name)}`,
        (d) =>
          badDomainName(d.name) ?? d.aliases.map(badAliasName).find((x) => x !== undefined) ?? badAccount(d.account),
      );
    },
    listMailboxes: async (domain) =>
      keep(
        await dir.listMailboxes(domain),
        (m) => `mailbox ${JSON.stringify(`${m.local}@${m.domain}`)}`,
        (m) => badLocal(m.local),
      ),
    listHeld: async () => {
      const badAccount = accountCheck();
      return keep(
        await dir.listHeld(),
        (h) => `held domain ${JSON.stringify(h.name)}`,
        (h) =>
          badDomainName(h.name) ??
          (/^\S+$/.test(h.host) ? undefined : `its host ${JSON.stringify(h.host)} is not HOST or HOST:PORT`) ??
          badAccount(h.account),
      );
    },
  };
}

/**
 * The rows of `rows` that `bad` finds nothing against; each other one is said through `refused` (`WHAT refused: WHY;
 * FIX`), and the rest goes on. Every reader of the shared directory here (the keeper's source and table, the
 * export) leaves a row out this way.
 */
export function keepTrusted<T>(
  rows: readonly T[],
  what: (r: T) => string,
  bad: (r: T) => string | undefined,
  refused: (line: string) => void,
  fix: string = REFUSED_FIX,
): T[] {
  return rows.filter((r) => {
    const why = bad(r);
    if (why !== undefined) refused(`${what(r)} refused: ${why}; ${fix}`);
    return why === undefined;
  });
}

/** What to do about a refused row: said once in each error. */
export const REFUSED_FIX =
  'fix or remove the row in the shared directory (quail domain/user/office commands at the office that made it); this office leaves it out until then';
