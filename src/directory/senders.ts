// Which envelope senders a login may use after SMTP AUTH: the addresses whose mail comes to it, or what it administers.
import { asciiLower } from '../core/index.js';
import { splitLogin } from './names.js';
import type { Directory, Domain, Mailbox } from './types.js';

/**
 * May the mailbox `login` (`local@domain`, as AUTH returned it) use `sender` as its MAIL FROM? The rule is "mail to
 * that address comes to you", or you administer its domain:
 *   - its own address, in its domain or any alias domain of it;
 *   - an alias of its domain whose targets include the login (`joe@example.org` or `&joe@...`, any alias domain);
 *   - `local-ext` of its own local part when no mailbox or alias has that exact name (vdeliver delivers it there);
 *   - any address of its domain (and alias domains) with the `domain-admin` flag (vpopmail's qmailadmin admin);
 *   - any address of a domain it administers by `quail domain admin add` (domain_admins; issue 19): it may set the
 *     passwords of that domain's mailboxes and read their mail anyway, so refusing their addresses would guard
 *     nothing — the same rule as the flag, which names only its own domain;
 *   - any address of any directory domain with `system-admin`;
 *   - `<>` only for a domain administrator (flag or domain_admins) or `system-admin` (auto-responders and list managers an administrator runs; a
 *     user's client never needs it, and a null sender hides failures from the one who sent).
 * Addresses of domains the directory does not manage are never allowed. Directory trouble throws (temporary).
 */
export async function mayUseSender(dir: Directory, login: string, sender: string): Promise<boolean> {
  const parts = splitLogin(login);
  if (!parts) return false;
  const dom = await dir.resolveDomain(parts[1]);
  const box = dom === null ? null : await dir.getMailbox(dom.name, parts[0]);
  if (dom === null || box === null) return false;
  const flagAdmin = box.flags.includes('domain-admin');
  const systemAdmin = box.flags.includes('system-admin');
  // domains it administers by `quail domain admin add` (any domain, not only its own): as the flag does for its own
  const listed = await dir.adminDomainsOf(`${box.local}@${dom.name}`);
  if (sender === '') return flagAdmin || systemAdmin || listed.length > 0;
  const at = sender.lastIndexOf('@');
  if (at <= 0) return false;
  const local = asciiLower(sender.slice(0, at));
  const sdom = await dir.resolveDomain(asciiLower(sender.slice(at + 1)));
  if (sdom === null) return false;
  if (systemAdmin || listed.includes(sdom.name)) return true;
  if (sdom.name !== dom.name) return false;
  if (flagAdmin || local === box.local) return true;
  const alias = await dir.getAlias(sdom.name, local);
  if (alias !== null) {
    for (const t of alias.targets) if (await namesMailbox(dir, t, dom, box)) return true;
    return false;
  }
  if (await dir.getMailbox(sdom.name, local)) return false;
  const dash = local.indexOf('-');
  return dash > 0 && local.slice(0, dash) === box.local;
}

/** An alias target that forwards to the mailbox (`joe@example.org`, `&joe@alias-of-example.org`). */
async function namesMailbox(dir: Directory, target: string, dom: Domain, box: Mailbox): Promise<boolean> {
  const t = target.startsWith('&') ? target.slice(1) : target;
  const at = t.lastIndexOf('@');
  if (at <= 0 || t.startsWith('|') || t.startsWith('/') || t.startsWith('.')) return false;
  if (asciiLower(t.slice(0, at)) !== box.local) return false;
  const d = asciiLower(t.slice(at + 1));
  return d === dom.name || (await dir.resolveDomain(d))?.name === dom.name;
}
