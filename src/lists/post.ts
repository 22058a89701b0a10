// quail list-post: a message to the list address → checks, then held for moderators or sent to every subscriber.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ListTable, MailingList } from '../directory/index.js';
import { listHome } from './admin.js';
import { encodeAddress } from './address.js';
import { archivePost } from './archive.js';
import { createDurable } from './durable.js';
import { makeCookie } from './cookie.js';
import { fieldValue, oneLine, parseMessage, unparse, valueOf } from './message.js';
import type { Outbox } from './send.js';
import type { BounceRule, ListWriter } from './writer.js';

/** Everything a list program works with; made by run.ts from qmail-local's environment. */
export interface ProgramCtx {
  readonly root: string;
  readonly list: MailingList;
  /** Read-only use: who is subscribed, moderating, owning. */
  readonly lists: ListTable;
  /** Changes go through this (the supervisor's socket when the directory is not writable here). */
  readonly writer: ListWriter;
  readonly outbox: Outbox;
  /** The envelope sender (qmail-local's SENDER). */
  readonly sender: string;
  readonly now: number;
  /** control/listurl: the web listener's base URL for one-click unsubscribe; null: none. */
  readonly listUrl: string | null;
  readonly bounce: BounceRule;
}

/** qmail-local's reading of a program's exit: 0 done, 99 done (stop), 100 bounce with `text`, 111 retry later. */
export interface ProgramResult {
  readonly exit: 0 | 99 | 100 | 111;
  readonly text: string;
}

export const addressOf = (l: MailingList, suffix = ''): string => `${l.local}${suffix}@${l.domain}`;
export const bounceTo = (l: MailingList): string => addressOf(l, '-return-');
const listId = (l: MailingList): string => `<${l.local}.${l.domain}>`;

/** Fields a post loses (ezmlm's headerremove, plus the list fields we set ourselves). */
const REMOVED = new Set([
  'return-path',
  'precedence',
  'content-length',
  'x-confirm-reading-to',
  'return-receipt-to',
  'disposition-notification-to',
  'mailing-list',
  'list-id',
  'list-post',
  'list-help',
  'list-subscribe',
  'list-unsubscribe',
  'list-unsubscribe-post',
  'list-archive',
  'list-owner',
]);

/** The one-click URL for one subscriber (RFC 8058), or null without control/listurl. */
function oneClickUrl(c: ProgramCtx, subscriber: string): string | null {
  if (c.listUrl === null) return null;
  const cookie = makeCookie(c.list.secret, 'oneclick', subscriber, c.now);
  const base = c.listUrl.replace(/\/+$/, '');
  const e = encodeURIComponent;
  return `${base}/lists/unsubscribe/${e(c.list.domain)}/${e(c.list.local)}/${e(encodeAddress(subscriber))}/${cookie}`;
}

/** Sends an accepted post: archived (its number N is the VERP number), then one copy per subscriber. */
export async function distribute(c: ProgramCtx, data: Buffer): Promise<ProgramResult> {
  const l = c.list;
  const p = parseMessage(data);
  const kept: string[] = [];
  let subject: string | null = null;
  for (const f of p.fields) {
    if (REMOVED.has(f.name) || (l.options.replyToList && f.name === 'reply-to')) continue;
    if (f.name === 'subject' && subject === null) {
      subject = valueOf(f);
      continue;
    }
    kept.push(f.raw);
  }
  const prefix = l.options.subjectPrefix;
  const subj = subject ?? '';
  const newSubject = prefix !== '' && !subj.includes(prefix) ? `${prefix} ${subj}`.trimEnd() : subj;
  const common = [
    `Mailing-List: contact ${addressOf(l, '-help')}; run by quail\n`,
    `Delivered-To: mailing list ${addressOf(l)}\n`,
    `List-Id: ${l.options.description !== '' ? `${oneLine(l.options.description, 100)} ` : ''}${listId(l)}\n`,
    `List-Post: <mailto:${addressOf(l)}>\n`,
    `List-Help: <mailto:${addressOf(l, '-help')}>\n`,
    `List-Subscribe: <mailto:${addressOf(l, '-subscribe')}>\n`,
    'Precedence: list\n',
    ...(l.options.replyToList ? [`Reply-To: <${addressOf(l)}>\n`] : []),
  ];
  const fields = [...common, ...kept, ...(subject !== null || prefix !== '' ? [`Subject: ${newSubject}\n`] : [])];
  const n = archivePost(listHome(c.root, l.domain, l.local), unparse(fields, p.body));
  const subscribers = await c.lists.members(l.domain, l.local, 'subscriber');
  for (const s of subscribers) {
    const url = oneClickUrl(c, s.address);
    const own = [
      `List-Unsubscribe: <mailto:${addressOf(l, '-unsubscribe')}>${url === null ? '' : `, <${url}>`}\n`,
      ...(url === null ? [] : ['List-Unsubscribe-Post: List-Unsubscribe=One-Click\n']),
    ];
    await c.outbox.copy(
      `${l.local}-return-${n}-${encodeAddress(s.address)}@${l.domain}`,
      s.address,
      unparse([...own, ...fields], p.body),
    );
  }
  return { exit: 0, text: `list ${addressOf(l)}: post ${n} sent to ${subscribers.length} subscribers` };
}

/** Is the sender a subscriber, moderator or owner? */
async function isMember(c: ProgramCtx, who: string): Promise<boolean> {
  for (const role of ['subscriber', 'moderator', 'owner'] as const)
    if (await c.lists.getMember(c.list.domain, c.list.local, role, who)) return true;
  return false;
}

/** Held posts: `mod/ID`, the envelope sender on the first line, then the message. */
const heldPath = (c: ProgramCtx, id: string): string => join(listHome(c.root, c.list.domain, c.list.local), 'mod', id);

async function hold(c: ProgramCtx, data: Buffer): Promise<ProgramResult> {
  const l = c.list;
  const moderators = await c.lists.members(l.domain, l.local, 'moderator');
  if (moderators.length === 0)
    return { exit: 100, text: `The list ${addressOf(l)} is moderated but has no moderators; tell its owner. (#5.7.2)` };
  const id = randomBytes(8).toString('hex');
  // Durable before exit 0 (after which qmail-local lets the queue forget the message).
  createDurable(heldPath(c, id), Buffer.concat([Buffer.from(`${c.sender}\n`, 'latin1'), data]), 0o600);
  const cookie = makeCookie(l.secret, 'accept', id, c.now);
  const accept = addressOf(l, `-accept-${id}.${cookie}`);
  const reject = addressOf(l, `-reject-${id}.${makeCookie(l.secret, 'reject', id, c.now)}`);
  const p = parseMessage(data);
  const excerpt = data.subarray(0, 65536).toString('utf8');
  for (const m of moderators)
    await c.outbox.reply({
      sender: bounceTo(l),
      to: m.address,
      from: `<${addressOf(l, '-help')}>`,
      subject: `MODERATE for ${addressOf(l)}: ${oneLine(fieldValue(p, 'subject') ?? '(no subject)', 100)}`,
      extra: [`Reply-To: <${accept}>`],
      text:
        `A post from ${c.sender} to ${addressOf(l)} waits for a moderator.\n\n` +
        `To send it to the list, reply to (or send any message to)\n    ${accept}\n\n` +
        `To reject it, send a message to\n    ${reject}\n\n` +
        `These addresses work for 14 days.\n\n--- the post ---\n${excerpt}\n`,
    });
  return { exit: 0, text: `list ${addressOf(l)}: post held for moderation (${id})` };
}

/** A held post claimed by one decision: its sender and message, and what to do once the decision is carried out. */
export interface Claimed {
  readonly sender: string;
  readonly data: Buffer;
  /** The decision was carried out: the post is gone. */
  done(): void;
  /** It failed (to be retried): the post waits again. */
  release(): void;
}

/**
 * Claims a held post by renaming `mod/ID` to `mod/ID.claimed` (rename is atomic, so two decisions at once cannot
 * both have it); null when it is not waiting (already decided, or never there).
 */
export function claimHeld(c: ProgramCtx, id: string): Claimed | null {
  if (!/^[0-9a-f]{16}$/.test(id)) return null;
  const path = heldPath(c, id);
  const claimed = `${path}.claimed`;
  let raw: Buffer;
  try {
    renameSync(path, claimed);
    raw = readFileSync(claimed);
  } catch {
    return null;
  }
  const nl = raw.indexOf(10);
  return {
    sender: raw.subarray(0, nl).toString('latin1'),
    data: raw.subarray(nl + 1),
    done: () => unlinkSync(claimed),
    release: () => renameSync(claimed, path),
  };
}

/** A post: loops and bounces refused, then size, members-only, moderation; then it is sent. */
export async function post(c: ProgramCtx, data: Buffer): Promise<ProgramResult> {
  const l = c.list;
  const sender = c.sender.toLowerCase();
  if (sender === '' || sender === '#@[]')
    return {
      exit: 100,
      text: `The list ${addressOf(l)} does not take bounce messages (empty envelope sender). (#5.7.2)`,
    };
  if (sender.startsWith(`${l.local}-return-`) && sender.endsWith(`@${l.domain}`))
    return { exit: 0, text: `list ${addressOf(l)}: mail from its own return address dropped (a loop)` };
  const p = parseMessage(data);
  const mine = `mailing list ${addressOf(l)}`;
  const looped =
    p.fields.some((f) => f.name === 'delivered-to' && valueOf(f).toLowerCase() === mine) ||
    p.fields.some((f) => f.name === 'list-id' && valueOf(f).toLowerCase().includes(listId(l)));
  if (looped) return { exit: 100, text: 'This message is looping: it already has my Delivered-To line. (#5.4.6)' };
  if (l.options.maxBytes !== null && data.length > l.options.maxBytes)
    return {
      exit: 100,
      text: `The message (${data.length} bytes) is larger than the limit of ${addressOf(l)} (${l.options.maxBytes} bytes). (#5.2.3)`,
    };
  if (l.options.membersOnly && !(await isMember(c, sender)))
    return {
      exit: 100,
      text: `Only subscribers may post to ${addressOf(l)}; subscribe first by mail to ${addressOf(l, '-subscribe')}. (#5.7.2)`,
    };
  if (l.options.moderated) return hold(c, data);
  return distribute(c, data);
}
