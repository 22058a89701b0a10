// The spam folder: whether quail's own filter tagged a message as spam, and the Maildir++ folder such mail goes to.
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What quail's filter said of a message: spam (with spamd's score), not spam, or nothing we can trust. */
export type SpamVerdict =
  { readonly filtered: false } | { readonly filtered: true; readonly spam: boolean; readonly score: string };

/**
 * `Received: (qmail 123 invoked by alias); ...` (a forward of ours) or `... invoked from network` — qmail-queue's
 * line, written by quail's queue. Not `invoked by uid U`: what follows that line is a local user's own message, whose
 * first fields are its own writing (the filter's block comes first only when the filter itself queued it).
 */
const QUEUE_LINE = /^Received: \(qmail \d+ invoked (by alias|from network)\)/i;

/**
 * The verdict of quail's filter, trusted only where the filter writes it (README: Spam folder). `quail filter`
 * puts its block on top of the message it queues — `X-Quail-Filter:`, then `X-Spam-Status:` when spamd was asked —
 * above smtpd's own `Received:` line, which is the first line of everything a network client sends. So a sender
 * cannot write a field there; fields further down (a sender's `X-Spam-Flag: YES`, another server's verdict) are
 * never read. Skipped on the way: what a forward of ours puts above it (`Received: (qmail N invoked by alias)`,
 * `Delivered-To:` lines). Reads the first 8 KiB.
 */
export async function spamVerdict(messagePath: string): Promise<SpamVerdict> {
  const fh = await open(messagePath, 'r');
  let text: string;
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    text = buf.subarray(0, bytesRead).toString('latin1');
  } finally {
    await fh.close();
  }
  return verdictOf(text);
}

/** How much of the message's start the verdict reads. */
const HEAD_BYTES = 8192;

/** The same, on the message's bytes already read (the same first HEAD_BYTES of them). */
export function verdictOfHead(message: Buffer): SpamVerdict {
  return verdictOf(message.toString('latin1', 0, Math.min(message.length, HEAD_BYTES)));
}

/** The same, on the message's first bytes (golden tests: spam.test.ts). */
export function verdictOf(head: string): SpamVerdict {
  // unfolded fields of the header, in order
  const fields: string[] = [];
  for (const line of head.split('\n')) {
    if (line === '' || line === '\r') break;
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += ` ${line.trim()}`;
    else fields.push(line.replace(/\r$/, ''));
  }
  let i = 0;
  while (i < fields.length && (/^Delivered-To:/i.test(fields[i] ?? '') || QUEUE_LINE.test(fields[i] ?? ''))) i++;
  if (!/^X-Quail-Filter:/i.test(fields[i] ?? '')) return { filtered: false };
  const status = /^X-Spam-Status:\s*(Yes|No)\b,?\s*(.*)$/i.exec(fields[i + 1] ?? '');
  // the filter ran without spamd (clamd only): no verdict on spam
  if (!status) return { filtered: false };
  return { filtered: true, spam: status[1]?.toLowerCase() === 'yes', score: (status[2] ?? '').trim() };
}

/**
 * Makes `Maildir/.NAME/` a Maildir++ folder if it is not one: tmp, new and cur, the `maildirfolder` marker (Courier
 * and Dovecot's quota), and NAME in the Maildir's `subscriptions` (Dovecot's list of folders an IMAP client shows;
 * Courier's is `courierimapsubscribed`, left alone). Runs as the mailbox's account, so what it makes is the mailbox's.
 */
export async function ensureFolder(maildir: string, name: string): Promise<string> {
  const dir = join(maildir, `.${name}`);
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'maildirfolder'), '', { flag: 'a', mode: 0o600 });
  const subs = join(maildir, 'subscriptions');
  const had = await readFile(subs, 'utf8').catch(() => '');
  if (!had.split('\n').includes(name))
    await writeFile(subs, `${had}${had === '' || had.endsWith('\n') ? '' : '\n'}${name}\n`, { mode: 0o600 });
  return `${dir}/`;
}
