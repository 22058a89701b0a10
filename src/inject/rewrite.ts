// qmail-inject's address rewriting (docs/QMAIL.md G.2) and the settings it comes from (control files, env).
import { quoteAddress, quoteLocal } from '../core/index.js';
import type { Control, ControlName } from '../control/index.js';
import { tokenize, unquote, type Token } from './rfc822.js';

export type InjectEnv = Readonly<Record<string, string | undefined>>;

/** Everything qmail-inject takes from control files and the environment. */
export interface InjectSettings {
  /** control/defaulthost or $QMAILDEFAULTHOST: appended as `@defaulthost` to addresses without `@`. */
  readonly defaultHost: string;
  /** control/defaultdomain or $QMAILDEFAULTDOMAIN: appended as `.defaultdomain` to hosts without a dot. */
  readonly defaultDomain: string;
  /** control/plusdomain or $QMAILPLUSDOMAIN: replaces a trailing `+` of the host. */
  readonly plusDomain: string;
  /** control/idhost or $QMAILIDHOST: the host part of Message-IDs. */
  readonly idHost: string;
  /** $QMAILUSER, $MAILUSER, $USER, $LOGNAME, else `anonymous`: the user in a built From. */
  readonly mailUser: string;
  /** $QMAILHOST or $MAILHOST: the host in a built From (else defaulthost by rewriting). */
  readonly mailHost: string | undefined;
  /** $QMAILSUSER, else mailUser: the user of the default envelope sender. */
  readonly senderUser: string;
  /** $QMAILSHOST, else mailHost. */
  readonly senderHost: string | undefined;
  /** $QMAILNAME, $MAILNAME or $NAME: the display name of a built From. */
  readonly fullName: string | undefined;
  /** $QMAILINJECT letters. */
  readonly flags: InjectFlags;
}

export interface InjectFlags {
  /** c: the full name goes in a comment, `From: user@host (Name)`. */
  readonly nameComment: boolean;
  /** s: ignore Return-Path in the message. */
  readonly deleteReturnPath: boolean;
  /** f: drop the message's From and build one. */
  readonly deleteFrom: boolean;
  /** i: drop the message's Message-ID and build one. */
  readonly deleteMessageId: boolean;
  /** r: VERP: the envelope sender becomes `user-@host-@[]`. */
  readonly verp: boolean;
  /** m: the default sender's user becomes `user-time.pid`. */
  readonly messageSender: boolean;
}

export function parseInjectFlags(letters: string | undefined): InjectFlags {
  const has = (c: string): boolean => (letters ?? '').includes(c);
  return {
    nameComment: has('c'),
    deleteReturnPath: has('s'),
    deleteFrom: has('f'),
    deleteMessageId: has('i'),
    verp: has('r'),
    messageSender: has('m'),
  };
}

/** Reads the settings: environment variables override the control files (through `control`, never directly). */
export function injectSettings(control: Control, env: InjectEnv): InjectSettings {
  const pick = (envName: string, file: ControlName): string => env[envName] ?? control.single(file).value ?? file; // the catalogue's fallback is the file's own name
  const mailHost = env['QMAILHOST'] ?? env['MAILHOST'];
  const mailUser = env['QMAILUSER'] ?? env['MAILUSER'] ?? env['USER'] ?? env['LOGNAME'] ?? 'anonymous';
  return {
    defaultHost: pick('QMAILDEFAULTHOST', 'defaulthost'),
    defaultDomain: pick('QMAILDEFAULTDOMAIN', 'defaultdomain'),
    plusDomain: pick('QMAILPLUSDOMAIN', 'plusdomain'),
    idHost: pick('QMAILIDHOST', 'idhost'),
    mailUser,
    mailHost,
    senderUser: env['QMAILSUSER'] ?? mailUser,
    senderHost: env['QMAILSHOST'] ?? mailHost,
    fullName: env['QMAILNAME'] ?? env['MAILNAME'] ?? env['NAME'],
    flags: parseInjectFlags(env['QMAILINJECT']),
  };
}

/** The tokens added by rewriting, parsed once: `@defaulthost`, `.defaultdomain`, `.plusdomain`. */
export interface Rewriter {
  /** Rewrites one address's tokens (qmail's rwgeneric). */
  readonly rewrite: (addr: readonly Token[]) => Token[];
  /** Parses an address given on the command line (quoting its local part first) and rewrites it. */
  readonly envelope: (arg: string) => string | null;
}

function parseSuffix(prefix: string, value: string, what: string): Token[] {
  const t = tokenize(prefix + value);
  if (t === null) throw new SyntaxError(`unable to parse ${what}: ${value}`);
  return t;
}

/** Builds the rewriter; throws SyntaxError if a host setting itself cannot be parsed. */
export function makeRewriter(s: Pick<InjectSettings, 'defaultHost' | 'defaultDomain' | 'plusDomain'>): Rewriter {
  const atHost = parseSuffix('@', s.defaultHost, 'defaulthost');
  const dotDomain = parseSuffix('.', s.defaultDomain, 'defaultdomain');
  const dotPlus = parseSuffix('.', s.plusDomain, 'plusdomain');

  const rewrite = (input: readonly Token[]): Token[] => {
    let a = [...input];
    if (a.length === 0) return a; // <> stays <>
    const last = a[a.length - 1] as Token;
    // <foo@[]> is left alone
    if (a.length >= 2 && last.type === 'literal' && last.text === '' && a[a.length - 2]?.type === 'at') return a;
    // A source route <@a,@b:user@host> loses its route.
    if (a[0]?.type === 'at') {
      const colon = a.findIndex((t) => t.type === 'colon');
      a = colon < 0 ? [] : a.slice(colon + 1);
      if (a.length === 0) return a;
    }
    if (a[a.length - 1]?.type === 'dot') a.pop(); // a trailing dot
    if (a.length === 0) return a;
    if (a[a.length - 1]?.type === 'at') a.pop(); // a trailing @
    if (a.length === 0) return a;
    if (!a.some((t) => t.type === 'at')) a.push(...atHost);
    const end = a[a.length - 1] as Token;
    if (end.type === 'atom' && end.text.endsWith('+')) {
      a[a.length - 1] = { type: 'atom', text: end.text.slice(0, -1) };
      a.push(...dotPlus);
    }
    // A host without a dot (and not a [literal]) gets .defaultdomain.
    let k = a.length - 1;
    let plain = true;
    for (; k >= 0 && (a[k] as Token).type !== 'at'; k--) {
      const type = (a[k] as Token).type;
      if (type === 'dot' || type === 'literal') plain = false;
    }
    if (plain) a.push(...dotDomain);
    return a;
  };

  const envelope = (arg: string): string | null => {
    // Like qmail's quote2: the local part is quoted when needed, so `joe blow@host` stays one address.
    const t = tokenize(arg.includes('@') ? quoteAddress(arg) : quoteLocal(arg));
    if (t === null) return null;
    return unquote(rewrite(t));
  };
  return { rewrite, envelope };
}
