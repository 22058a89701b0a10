// What the root offices process takes from the shared directory: every name that becomes a path and every account
// that becomes a file's owner or a delivery's uid is checked as the local directory checks it (src/offices/README.md,
// "The shared directory is not trusted"), since any office, or anyone with the directory's password, writes the rows.
import { domainName, localPart } from '../directory/index.js';
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

/** What to do about a refused row: said once in each error. */
export const REFUSED_FIX =
  'fix or remove the row in the shared directory (quail domain/user commands at the office that made it); this office leaves it out until then';
