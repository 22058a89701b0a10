// Names, policies and flags: validation and the text forms used in the database, .qmail-default and the CLI.
import { asciiLower, QuailError } from '../core/index.js';
import { mailboxLocal, parsePolicyWord, targetKind, unusableLocal } from '../vdeliver/index.js';
import { MAILBOX_FLAGS, type MailboxFlag, type UnknownPolicy } from './types.js';

export { formatPolicy } from '../vdeliver/index.js';

/** A request the directory refuses (exists, missing, bad name, over a limit): permanent, exit 100. */
export class DirectoryError extends QuailError {
  constructor(message: string) {
    super(message, false, '5.0.0');
    this.name = 'DirectoryError';
  }
}

const DOMAIN = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

export function domainName(raw: string): string {
  const d = asciiLower(raw.trim());
  if (d.length > 253 || !DOMAIN.test(d)) {
    throw new DirectoryError(`${JSON.stringify(raw)} is not a domain name (letters, digits, - and _ between dots)`);
  }
  return d;
}

/**
 * An alias domain's name: a domain, or `.domain` for every host below it (rcpthosts' and virtualdomains' dotted
 * form, docs/QMAIL.md A: `.example.com` matches `a.example.com`, `b.a.example.com`, not `example.com` itself).
 */
export function aliasDomainName(raw: string): string {
  const t = raw.trim();
  return t.startsWith('.') ? `.${domainName(t.slice(1))}` : domainName(t);
}

/** A mailbox's local part, lowercased; the rule is vdeliver's (`mailbox:LOCAL` must be able to name every mailbox). */
export function localPart(raw: string): string {
  const l = mailboxLocal(raw);
  if (l === null) throw new DirectoryError(unusableLocal(raw));
  return l;
}

/** `user@domain` or `user%domain` (POP3 clients that cannot send '@') → [local, domain]: core's, shared with src/throttle. */
export { splitLogin } from '../core/index.js';

/** `bounce-no-mailbox`, `delete`, `user@host` (forward), `mailbox:LOCAL` (deliver into that mailbox); vdeliver's language. */
export function parsePolicy(text: string): UnknownPolicy {
  const p = parsePolicyWord(text);
  if (typeof p === 'string') throw new DirectoryError(p);
  return p;
}

export function flagsToBits(flags: readonly MailboxFlag[]): number {
  let bits = 0;
  for (const f of flags) {
    const i = MAILBOX_FLAGS.indexOf(f);
    if (i < 0) throw new DirectoryError(`unknown flag ${JSON.stringify(f)}: use ${MAILBOX_FLAGS.join(', ')}`);
    bits |= 1 << i;
  }
  return bits;
}

export function bitsToFlags(bits: number): MailboxFlag[] {
  return MAILBOX_FLAGS.filter((_, i) => (bits & (1 << i)) !== 0);
}

export function parseFlag(text: string): MailboxFlag {
  const f = MAILBOX_FLAGS.find((x) => x === text);
  if (!f) throw new DirectoryError(`unknown flag ${JSON.stringify(text)}: use ${MAILBOX_FLAGS.join(', ')}`);
  return f;
}

/** A forward to the address itself would go round until the loop check bounces it: refused when it is written. */
export function checkNotSelf(targets: readonly string[], local: string, domain: string): void {
  const self = `${local}@${domain}`.toLowerCase();
  for (const t of targets) {
    if (targetKind(t) === 'forward' && t.replace(/^&/, '').toLowerCase() === self)
      throw new DirectoryError(
        `${self} cannot forward to itself: mail would loop (give another address, or a Maildir path to keep a copy)`,
      );
  }
}

/**
 * `user@host` or `&user@host`: a target that only forwards, as vdeliver and qmail-local read it — not a program
 * (`|...`) nor a file path (`/...`, `./...`), which run or write as the domain's delivery account.
 */
export const isForwardTarget = (raw: string): boolean => targetKind(raw.trim().replace(/^&/, '')) === 'forward';

export function checkTarget(raw: string): string {
  const t = raw.trim();
  // A target is one line of a .qmail file (here and in quail office export): no line break, no other control character.
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (t === '' || /[\x00-\x08\x0a-\x1f\x7f]/.test(t))
    throw new DirectoryError(
      `alias target ${JSON.stringify(raw)} is empty or has a newline or other control character`,
    );
  if (targetKind(t) === 'forward' && !/^&?[^@\s]+@[^@\s]+$/.test(t)) {
    throw new DirectoryError(`alias target ${JSON.stringify(raw)}: give user@host, /path/Maildir/ or |program`);
  }
  return t;
}
