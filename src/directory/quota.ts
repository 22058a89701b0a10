// Maildir++ quota (the maildirsize file Courier and Dovecot share): read usage, check, record a delivery.
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic } from './files.js';

export interface Usage {
  readonly bytes: number;
  readonly messages: number;
}

/** The quota definition line: `NNNS,MMMC` (either part may be missing). */
export function quotaLine(bytes: number | null, messages: number | null): string {
  return [bytes === null ? null : `${bytes}S`, messages === null ? null : `${messages}C`].filter((x) => x !== null).join(',');
}

/** Size from the `,S=` part of a Maildir file name, else stat. */
function fileSize(dir: string, name: string): number {
  const m = /,S=(\d+)/.exec(name);
  if (m) return Number(m[1]);
  try {
    return statSync(join(dir, name)).size;
  } catch {
    return 0;
  }
}

/** Counts new/ and cur/ (what Maildir++ does when maildirsize is missing or must be recalculated). */
export function scanUsage(maildir: string): Usage {
  let bytes = 0;
  let messages = 0;
  for (const sub of ['new', 'cur']) {
    const dir = join(maildir, sub);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (name.startsWith('.')) continue;
      bytes += fileSize(dir, name);
      messages += 1;
    }
  }
  return { bytes, messages };
}

/**
 * Current usage from maildirsize (first line: the quota; then `bytes count` lines), rewriting the file from a
 * scan when it is missing or was made for another quota.
 */
export function readUsage(maildir: string, quota: string): Usage {
  const path = join(maildir, 'maildirsize');
  const text = existsSync(path) ? readFileSync(path, 'latin1') : null;
  const lines = text?.split('\n') ?? [];
  if (text === null || lines[0] !== quota) {
    const u = scanUsage(maildir);
    writeAtomic(path, `${quota}\n${u.bytes} ${u.messages}\n`, 0o600);
    return u;
  }
  let bytes = 0;
  let messages = 0;
  for (const l of lines.slice(1)) {
    const m = /^\s*(-?\d+)\s+(-?\d+)\s*$/.exec(l);
    if (!m) continue;
    bytes += Number(m[1]);
    messages += Number(m[2]);
  }
  return { bytes, messages };
}

/** Appends one delivery to maildirsize (an O_APPEND write of one short line, as Maildir++ specifies). */
export function recordDelivery(maildir: string, bytes: number): void {
  appendFileSync(join(maildir, 'maildirsize'), `${bytes} 1\n`, { mode: 0o600 });
}

/** Usage at or above this share of a quota brings the one warning message (`quotawarn` marks it as sent). */
export const WARN_RATIO = 0.9;

/** Is usage at or past WARN_RATIO of either limit? */
export function nearQuota(u: Usage, bytes: number | null, messages: number | null): boolean {
  return (bytes !== null && bytes > 0 && u.bytes >= bytes * WARN_RATIO) || (messages !== null && messages > 0 && u.messages >= messages * WARN_RATIO);
}

/** An automatic notice (plain text, RFC 5322 header) put straight into a mailbox by delivery itself. */
function notice(to: string, subject: string, body: readonly string[], now: Date): string {
  return [
    `From: Mail Delivery System <MAILER-DAEMON>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    `Date: ${now.toUTCString().replace('GMT', '+0000')}`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    ...body,
    '',
  ].join('\n');
}

/** The warning delivered into the mailbox when its usage crosses 90 % (plain text, RFC 5322 header). */
export function warningMessage(address: string, u: Usage, bytes: number | null, messages: number | null, now: Date): string {
  const pct = Math.max(bytes ? (100 * u.bytes) / bytes : 0, messages ? (100 * u.messages) / messages : 0);
  return notice(address, `Your mailbox is ${Math.floor(pct)}% full`, [
    `Your mailbox ${address} is using ${u.bytes} of ${bytes ?? 'unlimited'} bytes and ${u.messages} of ${messages ?? 'unlimited'} messages.`,
    'When it is full, new mail is held back and finally returned to its senders.',
    'Please delete or download some messages.',
  ], now);
}

/** The warning to one mailbox of the domain (see README: Quota) when the domain's total crosses 90 % of its quota. */
export function domainWarningMessage(to: string, domain: string, usedBytes: number, quotaBytes: number, now: Date): string {
  return notice(to, `The domain ${domain} is ${Math.floor((100 * usedBytes) / quotaBytes)}% full`, [
    `The mailboxes of the domain ${domain} are using ${usedBytes} of the domain's quota of ${quotaBytes} bytes.`,
    'This is the quota of the whole domain, shared by all its mailboxes, not the quota of one mailbox.',
    'When it is full, new mail for every mailbox of the domain is held back and finally returned to its senders.',
    'Please delete or download some messages, or ask for a larger domain quota.',
  ], now);
}

/** Marks that the domain's 90 % warning was sent (in `domains/<dom>/`); removed when usage falls below 90 %. */
export const DOMAIN_WARN_FILE = '.quotawarn';

/** The domain's usage cache, `domains/<dom>/.domainsize`: `QUOTA TIME` then `bytes count` lines, like maildirsize. */
export const DOMAIN_SIZE_FILE = '.domainsize';
/** The cache is recalculated when older than this (mail removed by POP/IMAP clients is only seen then) or past 5120 bytes. */
export const DOMAIN_SIZE_MAX_AGE_S = 15 * 60;

/**
 * The domain's total usage: from the cache while it is fresh, else a scan of every given Maildir (rewriting the
 * cache). `maildirs` is called only when a scan is needed.
 */
export async function domainUsage(domainHome: string, quotaBytes: number, nowMs: number, maildirs: () => Promise<readonly string[]>): Promise<Usage> {
  const path = join(domainHome, DOMAIN_SIZE_FILE);
  const text = existsSync(path) ? readFileSync(path, 'latin1') : null;
  const lines = text?.split('\n') ?? [];
  const head = /^(\d+)S (\d+)$/.exec(lines[0] ?? '');
  const fresh = text !== null && text.length <= 5120 && head !== null && Number(head[1]) === quotaBytes &&
    nowMs / 1000 - Number(head[2]) < DOMAIN_SIZE_MAX_AGE_S;
  if (!fresh) {
    let bytes = 0;
    let messages = 0;
    for (const md of await maildirs()) {
      const u = scanUsage(md);
      bytes += u.bytes;
      messages += u.messages;
    }
    writeAtomic(path, `${quotaBytes}S ${Math.floor(nowMs / 1000)}\n${bytes} ${messages}\n`, 0o600);
    return { bytes, messages };
  }
  let bytes = 0;
  let messages = 0;
  for (const l of lines.slice(1)) {
    const m = /^\s*(-?\d+)\s+(-?\d+)\s*$/.exec(l);
    if (!m) continue;
    bytes += Number(m[1]);
    messages += Number(m[2]);
  }
  return { bytes, messages };
}

/** Appends one delivery to the domain's cache (if there is one). */
export function recordDomainDelivery(domainHome: string, bytes: number): void {
  const path = join(domainHome, DOMAIN_SIZE_FILE);
  if (existsSync(path)) appendFileSync(path, `${bytes} 1\n`);
}
