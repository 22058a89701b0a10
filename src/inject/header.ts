// The header of a locally written message, rewritten the way qmail-inject does (docs/QMAIL.md G.2).
import { asciiLower, cString, permError, quoteLocal, rfc5322Date } from '../core/index.js';
import type { InjectSettings, Rewriter } from './rewrite.js';
import { addressList, tokenize, unparse, unquote, type Token } from './rfc822.js';

/** Header fields qmail-inject knows by name (compared ASCII-case-insensitively, `-` exactly). */
const KNOWN = new Set([
  'sender',
  'from',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'date',
  'message-id',
  'subject',
  'resent-sender',
  'resent-from',
  'resent-reply-to',
  'resent-to',
  'resent-cc',
  'resent-bcc',
  'resent-date',
  'resent-message-id',
  'return-receipt-to',
  'errors-to',
  'apparently-to',
  'received',
  'return-path',
  'delivered-to',
  'content-length',
  'content-type',
  'content-transfer-encoding',
  'notice-requested-upon-delivery-to',
  'mail-followup-to',
]);

/** Fields whose addresses are recipients: normal, and for a resent message. */
const RECIPIENT_FIELDS = new Set(['to', 'cc', 'bcc', 'apparently-to']);

const RESENT_RECIPIENT_FIELDS = new Set(['resent-to', 'resent-cc', 'resent-bcc']);
/** Fields whose addresses are rewritten but are not recipients. */
const SENDER_FIELDS = new Set([
  'sender',
  'from',
  'reply-to',
  'return-receipt-to',
  'errors-to',
  'resent-sender',
  'resent-from',
  'resent-reply-to',
]);
/** Fields that never leave qmail-inject. Content-Length: "some things are just too stupid". */
const DROPPED = new Set(['bcc', 'resent-bcc', 'return-path', 'content-length']);
const RESENT = [
  'resent-sender',
  'resent-from',
  'resent-reply-to',
  'resent-to',
  'resent-cc',
  'resent-bcc',
  'resent-date',
  'resent-message-id',
];

/** The lower-cased name of a known field, or undefined. `To :` counts as To. */
function knownField(line: string): string | undefined {
  const m = /^([^\s:]+)[ \t]*:/.exec(line);
  if (!m) return undefined;
  const name = asciiLower(m[1] as string);
  return KNOWN.has(name) ? name : undefined;
}

/** A line that starts a header field: a name of printable non-space characters, then optional blanks, then `:`. */
export function validField(line: string): boolean {
  const colon = line.indexOf(':');
  if (colon < 0) return false;
  const name = line.slice(0, colon).replace(/[ \t]+$/, '');
  return name.length > 0 && /^[\x21-\x7e]+$/.test(name);
}

export interface HeaderContext {
  readonly settings: InjectSettings;
  readonly rewriter: Rewriter;
  /** Unix seconds when injection started (Date, Message-ID). */
  readonly time: number;
  readonly pid: number;
  /** Take recipients from To/Cc/Bcc (and rewrite those fields). */
  readonly fromHeaders: boolean;
  /** -f: the envelope sender, already rewritten. Undefined: from Return-Path or built. */
  readonly sender: string | undefined;
}

export interface RewrittenHeader {
  /** The complete new header, ending with its last field's "\n" (the blank line is part of the body). */
  readonly text: string;
  readonly sender: string;
  /** Recipients found in the header, in qmail's order (each field's addresses last-first). */
  readonly recipients: string[];
}

const atom = (text: string): Token => ({ type: 'atom', text });
const colon: Token = { type: 'colon', text: '' };

/** Collects header fields one at a time (each with its continuation lines and final "\n"). */
export class HeaderRewriter {
  private readonly seen = new Set<string>();
  private readonly saved: string[] = [];
  private readonly listed: string[] = [];
  private readonly resentListed: string[] = [];
  private sender: string | undefined;

  constructor(private readonly ctx: HeaderContext) {
    this.sender = ctx.sender;
  }

  /** Parses, rewrites and keeps (or drops) one field. Throws a permanent QuailError on bad syntax. */
  field(text: string): void {
    const name = knownField(text);
    const flags = this.ctx.settings.flags;
    if (flags.deleteFrom && name === 'from') return;
    if (flags.deleteMessageId && name === 'message-id') return;
    if (flags.deleteReturnPath && name === 'return-path') return;
    if (name) this.seen.add(name);
    let out = text;
    if (name !== undefined) {
      let onAddress: ((addr: Token[]) => void) | undefined;
      let rewrite = false;
      // qmail-inject rewrites the recipient fields whoever the recipients are (arguments or the header), and one it
      // cannot parse stays as written (rwmayfail): the addresses read before the fault still count
      let mayFail = false;
      if (RECIPIENT_FIELDS.has(name)) {
        rewrite = mayFail = true;
        if (this.ctx.fromHeaders) onAddress = (a) => this.listed.push(cString(unquote(a)));
      } else if (RESENT_RECIPIENT_FIELDS.has(name)) {
        rewrite = mayFail = true;
        if (this.ctx.fromHeaders) onAddress = (a) => this.resentListed.push(cString(unquote(a)));
      } else if (name === 'return-path') {
        rewrite = true;
        onAddress = (a) => this.setSender(a);
      } else if (SENDER_FIELDS.has(name)) {
        rewrite = true;
      }
      if (rewrite) out = this.rewriteField(text, onAddress, mayFail);
    }
    if (name !== undefined && DROPPED.has(name)) return;
    this.saved.push(out);
  }

  private setSender(addr: readonly Token[]): void {
    if (this.sender !== undefined) return;
    this.sender = cString(unquote(addr)) + (this.ctx.settings.flags.verp ? '-@[]' : '');
  }

  private rewriteField(text: string, onAddress?: (addr: Token[]) => void, mayFail = false): string {
    const tokens = tokenize(text);
    const rewritten =
      tokens &&
      addressList(
        tokens,
        (addr) => {
          const a = this.ctx.rewriter.rewrite(addr);
          onAddress?.(a);
          return a;
        },
        2,
      );
    if (!rewritten) {
      if (mayFail) return text;
      throw permError(`unable to parse this header field: ${text.replace(/\n$/, '')}`);
    }
    return unparse(rewritten);
  }

  /** Builds `From:` (or `Resent-From:`) from $QMAILUSER/$USER, $QMAILHOST and $QMAILNAME. */
  private defaultFrom(): string {
    const s = this.ctx.settings;
    const user: Token = { type: quoteLocal(s.mailUser) === s.mailUser ? 'atom' : 'quote', text: s.mailUser };
    const host: Token[] = s.mailHost === undefined ? [] : [{ type: 'at', text: '' }, atom(s.mailHost)];
    const name = s.fullName;
    const t: Token[] = [atom('From'), colon];
    if (name !== undefined && !s.flags.nameComment) {
      t.push({ type: 'quote', text: name }, { type: 'left', text: '' }, user, ...host, { type: 'right', text: '' });
    } else {
      t.push(user, ...host);
      if (name !== undefined) t.push({ type: 'comment', text: name });
    }
    return this.rewriteField(unparse(t));
  }

  /** The default envelope sender: `user@host` rewritten like a Return-Path. */
  private defaultSender(): void {
    const s = this.ctx.settings;
    let user = s.senderUser;
    if (s.flags.messageSender) user += `-${this.ctx.time}.${this.ctx.pid}`;
    if (s.flags.verp) user += '-';
    const t: Token[] = [atom('Return-Path'), colon, { type: 'quote', text: user }];
    if (s.senderHost !== undefined) t.push({ type: 'at', text: '' }, atom(s.senderHost));
    this.rewriteField(unparse(t), (a) => this.setSender(a));
  }

  /** Adds the missing fields (Date, Message-ID, From, an empty Cc group) in front of the kept ones. */
  finish(): RewrittenHeader {
    if (this.sender === undefined) this.defaultSender();
    const resent = RESENT.some((n) => this.seen.has(n));
    const p = resent ? 'Resent-' : '';
    const has = (n: string): boolean => this.seen.has(resent ? `resent-${n}` : n);
    let added = '';
    if (!has('date')) added += `${p}Date: ${rfc5322Date(new Date(this.ctx.time * 1000))}\n`;
    if (!has('message-id'))
      added += `${p}Message-ID: <${this.ctx.time}.${this.ctx.pid}.qmail@${this.ctx.settings.idHost}>\n`;
    if (!has('from')) added += p + this.defaultFrom();
    if (!has('to') && !has('cc')) added += `${p}Cc: recipient list not shown: ;\n`;
    return {
      text: added + this.saved.join(''),
      sender: this.sender ?? '',
      recipients: this.ctx.fromHeaders ? (resent ? this.resentListed : this.listed) : [],
    };
  }
}
