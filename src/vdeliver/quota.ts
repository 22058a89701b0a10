// Quota beyond Maildir++ (src/maildir has maildirsize): the domain's usage cache and the 90 % warning messages.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scanUsage, sumSizeLines, writeAtomic, type Usage } from '../maildir/index.js';

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
export function warningMessage(
  address: string,
  u: Usage,
  bytes: number | null,
  messages: number | null,
  now: Date,
): string {
  const pct = Math.max(bytes ? (100 * u.bytes) / bytes : 0, messages ? (100 * u.messages) / messages : 0);
  return notice(
    address,
    `Your mailbox is ${Math.floor(pct)}% full`,
    [
      `Your mailbox ${address} is using ${u.bytes} of ${bytes ?? 'unlimited'} bytes and ${u.messages} of ${messages ?? 'unlimited'} messages.`,
      'When it is full, new mail is held back and finally returned to its senders.',
      'Please delete or download some messages.',
    ],
    now,
  );
}

/** The warning to one mailbox of the domain (see README: Quota) when the domain's total crosses 90 % of its quota. */
export function domainWarningMessage(
  to: string,
  domain: string,
  usedBytes: number,
  quotaBytes: number,
  now: Date,
): string {
  return notice(
    to,
    `The domain ${domain} is ${Math.floor((100 * usedBytes) / quotaBytes)}% full`,
    [
      `The mailboxes of the domain ${domain} are using ${usedBytes} of the domain's quota of ${quotaBytes} bytes.`,
      'This is the quota of the whole domain, shared by all its mailboxes, not the quota of one mailbox.',
      'When it is full, new mail for every mailbox of the domain is held back and finally returned to its senders.',
      'Please delete or download some messages, or ask for a larger domain quota.',
    ],
    now,
  );
}

/** Marks that the domain's 90 % warning was sent (in `domains/<dom>/`); removed when usage falls below 90 %. */
export const DOMAIN_WARN_FILE = '.quotawarn';

/** The domain's usage cache, `domains/<dom>/.domainsize`: `QUOTA TIME` then `bytes count` lines, like maildirsize. */
export const DOMAIN_SIZE_FILE = '.domainsize';
/** The cache is recalculated when older than this (mail removed by POP/IMAP clients is only seen then) or past 5120 bytes. */
const DOMAIN_SIZE_MAX_AGE_S = 15 * 60;

/**
 * The domain's total usage: from the cache while it is fresh, else a scan of every given Maildir (rewriting the
 * cache). `maildirs` is called only when a scan is needed.
 */
export async function domainUsage(
  domainHome: string,
  quotaBytes: number,
  nowMs: number,
  maildirs: () => Promise<readonly string[]>,
): Promise<Usage> {
  const path = join(domainHome, DOMAIN_SIZE_FILE);
  const text = existsSync(path) ? readFileSync(path, 'latin1') : null;
  const lines = text?.split('\n') ?? [];
  const head = /^(\d+)S (\d+)$/.exec(lines[0] ?? '');
  const fresh =
    text !== null &&
    text.length <= 5120 &&
    head !== null &&
    Number(head[1]) === quotaBytes &&
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
  return sumSizeLines(lines.slice(1));
}

/** Appends one delivery to the domain's cache (if there is one). */
export function recordDomainDelivery(domainHome: string, bytes: number): void {
  const path = join(domainHome, DOMAIN_SIZE_FILE);
  if (existsSync(path)) appendFileSync(path, `${bytes} 1\n`);
}
