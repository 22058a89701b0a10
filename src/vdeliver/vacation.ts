// The vacation reply (RFC 3834): whether a delivered message gets one, once per sender per period, and its text.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import type { Vacation } from './types.js';

/** A reply for the caller to queue: envelope sender `<>` (RFC 3834 3.3), one recipient, the whole message. */
export interface VacationReply {
  readonly recipient: string;
  readonly message: string;
}

/** Queues a reply (src/start's runner writes it into the queue); a thrown error is reported, never a failed delivery. */
export type ReplyRunner = (reply: VacationReply) => Promise<void>;

/** The header fields of a message (names lowercase, folded lines joined), read from its first 64 KiB. */
export async function readHeader(path: string): Promise<Map<string, string[]>> {
  const fh = await open(path, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    text = buf.subarray(0, bytesRead).toString('latin1');
  } finally {
    await fh.close();
  }
  const end = text.indexOf('\n\n');
  const fields = new Map<string, string[]>();
  let last: [string, number] | undefined;
  for (const line of (end < 0 ? text : text.slice(0, end)).split('\n')) {
    if (/^[ \t]/.test(line) && last) {
      const list = fields.get(last[0]);
      if (list) list[last[1]] = `${list[last[1]] ?? ''} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const list = fields.get(name) ?? [];
    list.push(line.slice(colon + 1).trim());
    fields.set(name, list);
    last = [name, list.length - 1];
  }
  return fields;
}

/** Senders that are programs, not people (RFC 3834 2: never answer them). */
const AUTOMATED =
  /^(mailer-daemon|postmaster|listserv|majordomo|owner-.+|.+-request|.+-owner|.+-bounces?|bounces?|no-?reply|do-not-reply)$/i;

/**
 * Why this message gets no reply, or undefined when it gets one (RFC 3834 2): not to bounces (null sender), automated
 * senders, auto-submitted messages, bulk or list mail (Precedence, List-* fields), nor messages that do not name
 * one of the recipient's addresses in To or Cc (a copy through a list or Bcc).
 */
export function noReplyBecause(
  sender: string,
  h: Map<string, string[]>,
  addresses: readonly string[],
): string | undefined {
  if (sender === '' || sender === '#@[]') return 'a bounce (null sender)';
  const at = sender.lastIndexOf('@');
  if (at <= 0) return 'a sender without a domain';
  if (AUTOMATED.test(sender.slice(0, at))) return 'an automated sender';
  const auto = h.get('auto-submitted')?.[0];
  if (auto !== undefined && auto.toLowerCase().split(';')[0]?.trim() !== 'no') return 'auto-submitted';
  if (/^(bulk|list|junk)\b/i.test(h.get('precedence')?.[0] ?? '')) return 'bulk or list mail (Precedence)';
  for (const f of ['list-id', 'list-unsubscribe', 'list-post', 'list-help', 'mailing-list'])
    if (h.has(f)) return 'list mail';
  const named = [...(h.get('to') ?? []), ...(h.get('cc') ?? [])].join(',').toLowerCase();
  if (!addresses.some((a) => named.includes(a.toLowerCase()))) return 'not addressed to the mailbox by name';
  return undefined;
}

/**
 * Once per sender per period: `<home>/vacation/<hash of the sender>` holds the time of the last reply (its mtime).
 * True when a reply is due now (and the time is recorded), false when one was sent within `days`.
 */
export async function dueFor(home: string, sender: string, days: number, nowMs: number): Promise<boolean> {
  const dir = join(home, 'vacation');
  const file = join(dir, createHash('sha256').update(sender.toLowerCase()).digest('hex').slice(0, 32));
  const last = await stat(file).then(
    (s) => s.mtimeMs,
    () => undefined,
  );
  if (last !== undefined && nowMs - last < days * 86_400_000) return false;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(file, `${sender}\n`, { mode: 0o600 });
  await utimes(file, nowMs / 1000, nowMs / 1000);
  return true;
}

/** RFC 2047 for a subject that is not ASCII. */
function headerText(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

/** The reply: From the mailbox, To the sender, Auto-Submitted: auto-replied, In-Reply-To and References (RFC 3834 3.1). */
export function composeReply(
  from: string,
  to: string,
  v: Vacation,
  h: Map<string, string[]>,
  nowMs: number,
): VacationReply {
  const original = (h.get('subject')?.[0] ?? '').replace(/[\r\n]/g, ' ');
  const subject = v.subject !== '' ? v.subject : `Auto: ${original}`.trim();
  const id = h.get('message-id')?.[0];
  const domain = from.slice(from.lastIndexOf('@') + 1);
  const lines = [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: ${headerText(subject)}`,
    `Date: ${new Date(nowMs).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${nowMs}.${randomBytes(6).toString('hex')}@${domain}>`,
    ...(id !== undefined && /^<[^<>\s]+>$/.test(id) ? [`In-Reply-To: ${id}`, `References: ${id}`] : []),
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ];
  const body = v.body.replace(/\r\n?/g, '\n');
  return { recipient: to, message: `${lines.join('\n')}\n\n${body.endsWith('\n') ? body : `${body}\n`}` };
}

/**
 * After a delivery to a mailbox with a vacation: the reply, if due, handed to `reply`. Returns the line for the
 * delivery report (`vacation: ...`). Never throws: a lost reply is not lost mail.
 */
export async function vacationReply(o: {
  readonly home: string;
  readonly address: string;
  /** The address the message was sent to (an alias domain's, a `user-ext` form), besides the mailbox's own. */
  readonly original: string;
  readonly sender: string;
  readonly messagePath: string;
  readonly vacation: Vacation;
  readonly reply: ReplyRunner;
  readonly nowMs: number;
}): Promise<string> {
  try {
    const h = await readHeader(o.messagePath);
    const why = noReplyBecause(o.sender, h, [o.address, o.original]);
    if (why !== undefined) return `vacation: no reply, ${why}\n`;
    if (!(await dueFor(o.home, o.sender, o.vacation.days, o.nowMs)))
      return `vacation: no reply, ${o.sender} had one within ${o.vacation.days} days\n`;
    await o.reply(composeReply(o.address, o.sender, o.vacation, h, o.nowMs));
    return `vacation: replied to ${o.sender}\n`;
  } catch (err) {
    return `vacation: no reply, ${errText(err)}\n`;
  }
}
