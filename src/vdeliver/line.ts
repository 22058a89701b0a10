// The language vdeliver reads: its `.qmail-default` program line, the policy word on it, alias targets, mailbox names.
import { asciiLower } from '../core/index.js';

/** What happens to mail for an address of the domain that has no mailbox and no alias (vdelivermail's choices). */
export type UnknownPolicy =
  | { readonly kind: 'bounce-no-mailbox' }
  | { readonly kind: 'delete' }
  | { readonly kind: 'forward'; readonly address: string }
  | { readonly kind: 'mailbox'; readonly local: string };

/*
 * The line is read twice: by quail itself (src/local's in-process hook, the vpopmail import) and, when a real
 * qmail-local or vpopmail serves the same tree, by /bin/sh. Both must see the same words. quail writes the policy word
 * bare when every character is one sh reads as itself, else single-quoted; it reads the arguments as sh would for
 * that simple form (bare characters, '...', "..." without $ ` \, and \X). A line whose arguments are anything else
 * (unquoted ; | & $ ` ( ) < > * ? ...) is still vdeliver's line but its "policy" is the raw text, which no policy
 * word is: delivery defers saying so — it is never handed to a shell by quail.
 */

/** Characters /bin/sh reads as themselves anywhere in an unquoted word. */
const SH_PLAIN = /^[A-Za-z0-9@%+=:,./_-]+$/;

/** `word` as one sh word: as it is when sh reads it unchanged, else in single quotes (a quote as '\''). */
export function shellWord(word: string): string {
  return SH_PLAIN.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The words of `text` as /bin/sh splits and unquotes a simple argument list, or null when `text` holds anything sh
 * would expand, redirect, glob or treat as a command separator (or an unterminated quote).
 */
export function shellWords(text: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (text[i] === ' ' || text[i] === '\t') {
      i++;
      continue;
    }
    let w = '';
    while (i < n && text[i] !== ' ' && text[i] !== '\t') {
      const c = text[i] as string;
      if (c === "'") {
        const j = text.indexOf("'", i + 1);
        if (j < 0) return null;
        w += text.slice(i + 1, j);
        i = j + 1;
      } else if (c === '"') {
        const j = text.indexOf('"', i + 1);
        if (j < 0 || /[$`\\]/.test(text.slice(i + 1, j))) return null;
        w += text.slice(i + 1, j);
        i = j + 1;
      } else if (c === '\\') {
        if (i + 1 >= n || text[i + 1] === '\n') return null;
        w += text[i + 1];
        i += 2;
      } else if (SH_PLAIN.test(c)) {
        w += c;
        i++;
      } else return null;
    }
    out.push(w);
  }
  return out;
}

/**
 * `| quail vdeliver '' POLICY` (also `vdelivermail` or a path ending in /quail, the '' optional, the policy word
 * bare or sh-quoted) → the policy word ('' when absent); null when the line is not a vdeliver line. Arguments that
 * are not plain sh words give their raw text as the word (no policy: delivery defers).
 */
export function parseVdeliverLine(line: string): { policy: string } | null {
  const m = /^\|\s*(?:\S*\/)?(?:quail\s+vdeliver|vdelivermail)(?:\s+([^]*))?$/.exec(line.trim());
  if (!m) return null;
  const rest = (m[1] ?? '').trim();
  const words = shellWords(rest);
  if (words !== null) {
    if (words.length === 0) return { policy: '' };
    if (words.length === 1) return { policy: words[0] as string };
    if (words.length === 2 && words[0] === '') return { policy: words[1] as string };
  }
  return { policy: rest };
}

/** The `.qmail-default` program line for a policy (without its newline): the word sh-quoted when it must be. */
export function formatVdeliverLine(p: UnknownPolicy): string {
  return `| quail vdeliver '' ${shellWord(formatPolicy(p))}`;
}

// Local parts become directory names and users/assign/.qmail text: no '/', ':', whitespace, leading '.'.
const LOCAL = /^[a-z0-9_!#$%&'*+=?^`{|}~-][a-z0-9_.!#$%&'*+=?^`{|}~-]*$/;

/**
 * A mailbox name as the directory keeps it (ASCII-lowercased, trimmed), or null when it cannot be one (src/directory's
 * localPart applies this rule). It is kept with the policy language because `mailbox:LOCAL` names a mailbox; a
 * catch-all mailbox must be plainer still (parsePolicyWord: the word goes on a line /bin/sh runs).
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

/*
 * A catch-all's word is written on the domain's `.qmail-default`, which a real qmail-local (or vpopmail) runs with
 * /bin/sh: only characters sh reads as themselves are accepted (quail quotes the word too, but a policy must not
 * depend on every writer of that line doing so). A forward is a plain `user@host`; a catch-all mailbox a name of
 * letters, digits and `. _ + = -` (other mailbox names vpopmail allows, such as `o'brien`, cannot be the catch-all:
 * point an alias at them instead).
 */
const PLAIN_FORWARD = /^[A-Za-z0-9_+=][A-Za-z0-9._+=-]*@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const PLAIN_MAILBOX = /^[a-z0-9._+=-]+$/;

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
    if (local === null) return unusableLocal(raw);
    if (!PLAIN_MAILBOX.test(local))
      return (
        `the catch-all mailbox ${JSON.stringify(raw)} cannot be named on the domain's .qmail-default, which ` +
        `qmail-local runs with /bin/sh: only letters, digits and . _ + = - (point an alias at that mailbox instead)`
      );
    return { kind: 'mailbox', local };
  }
  if (t.includes('@')) {
    if (t.length <= 254 && PLAIN_FORWARD.test(t)) return { kind: 'forward', address: t };
    return (
      `the catch-all forward ${JSON.stringify(text)} is not a plain user@host (letters, digits and . _ + = - before ` +
      `the @, a domain name after it): it is written on the domain's .qmail-default, which qmail-local runs with ` +
      `/bin/sh, so no spaces, quotes or characters such as ; | & $ \` < > ( ) * ?`
    );
  }
  return `unknown-address policy ${JSON.stringify(text)}: use bounce-no-mailbox, delete, user@host or mailbox:LOCAL`;
}

/** How an alias target line is delivered (like a .qmail line). */
export type TargetKind = 'program' | 'maildir' | 'mbox' | 'forward';

export function targetKind(target: string): TargetKind {
  if (target.startsWith('|')) return 'program';
  if (target.startsWith('/') || target.startsWith('.')) return target.endsWith('/') ? 'maildir' : 'mbox';
  return 'forward';
}
