// Names, policies and flags: validation and the text forms used in the database, .qmail-default and the CLI.
import { asciiLower, QuailError } from '../address/index.js';
import { MAILBOX_FLAGS, type MailboxFlag, type UnknownPolicy } from './types.js';

/** A request the directory refuses (exists, missing, bad name, over a limit): permanent, exit 100. */
export class DirectoryError extends QuailError {
  constructor(message: string) {
    super(message, false, '5.0.0');
    this.name = 'DirectoryError';
  }
}

const DOMAIN = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;
// Local parts become directory names and users/assign/.qmail text: no '/', ':', whitespace, leading '.'.
const LOCAL = /^[a-z0-9_!#$%&'*+=?^`{|}~-][a-z0-9_.!#$%&'*+=?^`{|}~-]*$/;

export function domainName(raw: string): string {
  const d = asciiLower(raw.trim());
  if (d.length > 253 || !DOMAIN.test(d)) {
    throw new DirectoryError(`${JSON.stringify(raw)} is not a domain name (letters, digits, - and _ between dots)`);
  }
  return d;
}

export function localPart(raw: string): string {
  const l = asciiLower(raw.trim());
  if (l.length === 0 || l.length > 64 || !LOCAL.test(l)) {
    throw new DirectoryError(`${JSON.stringify(raw)} is not a usable local part (no '/', ':', spaces or leading '.', at most 64 characters)`);
  }
  return l;
}

/** `user@domain` or `user%domain` (POP3 clients that cannot send '@') → [local, domain]. */
export function splitLogin(login: string): [string, string] | null {
  const at = Math.max(login.lastIndexOf('@'), login.lastIndexOf('%'));
  if (at <= 0 || at === login.length - 1) return null;
  return [asciiLower(login.slice(0, at)), asciiLower(login.slice(at + 1))];
}

/** The policy word on the `.qmail-default` line and in `--policy`. */
export function formatPolicy(p: UnknownPolicy): string {
  switch (p.kind) {
    case 'bounce-no-mailbox':
    case 'delete':
      return p.kind;
    case 'forward':
      return p.address;
    case 'mailbox':
      return `mailbox:${p.local}`;
  }
}

/** `bounce-no-mailbox`, `delete`, `user@host` (forward), `mailbox:LOCAL` (deliver into that mailbox). */
export function parsePolicy(text: string): UnknownPolicy {
  const t = text.trim();
  if (t === 'bounce-no-mailbox' || t === '') return { kind: 'bounce-no-mailbox' };
  if (t === 'delete') return { kind: 'delete' };
  if (t.startsWith('mailbox:')) return { kind: 'mailbox', local: localPart(t.slice('mailbox:'.length)) };
  if (/^[^@\s]+@[^@\s]+$/.test(t)) return { kind: 'forward', address: t };
  throw new DirectoryError(`unknown-address policy ${JSON.stringify(text)}: use bounce-no-mailbox, delete, user@host or mailbox:LOCAL`);
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

/** How an alias target line is delivered (like a .qmail line). */
export type TargetKind = 'program' | 'maildir' | 'mbox' | 'forward';

export function targetKind(target: string): TargetKind {
  if (target.startsWith('|')) return 'program';
  if (target.startsWith('/') || target.startsWith('.')) return target.endsWith('/') ? 'maildir' : 'mbox';
  return 'forward';
}

export function checkTarget(raw: string): string {
  const t = raw.trim();
  if (t === '' || t.includes('\n')) throw new DirectoryError(`alias target ${JSON.stringify(raw)} is empty or has a newline`);
  if (targetKind(t) === 'forward' && !/^&?[^@\s]+@[^@\s]+$/.test(t)) {
    throw new DirectoryError(`alias target ${JSON.stringify(raw)}: give user@host, /path/Maildir/ or |program`);
  }
  return t;
}
