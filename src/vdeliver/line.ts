// The language vdeliver reads: its `.qmail-default` program line, the policy word on it, alias targets, mailbox names.
import { asciiLower } from '../core/index.js';

/** What happens to mail for an address of the domain that has no mailbox and no alias (vdelivermail's choices). */
export type UnknownPolicy =
  | { readonly kind: 'bounce-no-mailbox' }
  | { readonly kind: 'delete' }
  | { readonly kind: 'forward'; readonly address: string }
  | { readonly kind: 'mailbox'; readonly local: string };

/**
 * `| quail vdeliver '' POLICY` (also `vdelivermail` or a path ending in /quail, the '' optional) → the policy
 * word ('' when absent); null when the line is anything else.
 */
export function parseVdeliverLine(line: string): { policy: string } | null {
  const m = /^\|\s*(?:\S*\/)?(?:quail\s+vdeliver|vdelivermail)(?:\s+(?:''|""))?(?:\s+(\S+))?\s*$/.exec(line.trim());
  if (!m) return null;
  return { policy: m[1] ?? '' };
}

// Local parts become directory names and users/assign/.qmail text: no '/', ':', whitespace, leading '.'.
const LOCAL = /^[a-z0-9_!#$%&'*+=?^`{|}~-][a-z0-9_.!#$%&'*+=?^`{|}~-]*$/;

/**
 * A mailbox name as the directory keeps it (ASCII-lowercased, trimmed), or null when it cannot be one. The rule is
 * kept with the policy language because `mailbox:LOCAL` names a mailbox: the directory creates no mailbox that
 * vdeliver's line could not name (src/directory's localPart applies this rule).
 */
export function mailboxLocal(raw: string): string | null {
  const l = asciiLower(raw.trim());
  return l.length === 0 || l.length > 64 || !LOCAL.test(l) ? null : l;
}

/** Why `raw` is not a mailbox name (mailboxLocal gave null). */
export const unusableLocal = (raw: string): string =>
  `${JSON.stringify(raw)} is not a usable local part (no '/', ':', spaces or leading '.', at most 64 characters)`;

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

/**
 * `bounce-no-mailbox` (or nothing), `delete`, `user@host` (forward), `mailbox:LOCAL` (deliver into that mailbox) →
 * the policy; otherwise the text that says why not (the directory refuses it, vdeliver defers on it).
 */
export function parsePolicyWord(text: string): UnknownPolicy | string {
  const t = text.trim();
  if (t === 'bounce-no-mailbox' || t === '') return { kind: 'bounce-no-mailbox' };
  if (t === 'delete') return { kind: 'delete' };
  if (t.startsWith('mailbox:')) {
    const raw = t.slice('mailbox:'.length);
    const local = mailboxLocal(raw);
    return local === null ? unusableLocal(raw) : { kind: 'mailbox', local };
  }
  if (/^[^@\s]+@[^@\s]+$/.test(t)) return { kind: 'forward', address: t };
  return `unknown-address policy ${JSON.stringify(text)}: use bounce-no-mailbox, delete, user@host or mailbox:LOCAL`;
}

/** How an alias target line is delivered (like a .qmail line). */
export type TargetKind = 'program' | 'maildir' | 'mbox' | 'forward';

export function targetKind(target: string): TargetKind {
  if (target.startsWith('|')) return 'program';
  if (target.startsWith('/') || target.startsWith('.')) return target.endsWith('/') ? 'maildir' : 'mbox';
  return 'forward';
}
