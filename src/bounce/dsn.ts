// RFC 3464 delivery status notification carrying qmail's human text (the default bounce format).
import { quoteAddress, quoteLocal, reportCode, rfc5322Date } from '../core/index.js';
import type { QsbmfHead } from './qsbmf.js';
import { humanText, type BounceFailure } from './text.js';

/** Above this size the DSN carries only the original header (text/rfc822-headers, RFC 3462 §3). */
export const DSN_FULL_COPY_LIMIT = 4 * 1024 * 1024;

export interface DsnHead extends QsbmfHead {
  /** Unix seconds the original was queued (Arrival-Date, RFC 3464 §2.2.5). */
  readonly birth: number;
  /** MIME boundary, unique per bounce (for example derived from the queue id and time). */
  readonly boundary: string;
  /** true: part 3 is the whole message (message/rfc822); false: its header (text/rfc822-headers). */
  readonly fullCopy: boolean;
}

/** The enhanced status of a permanent failure (RFC 3463): `(#x.y.z)`, else the remote reply's code, else 5.0.0. */
export function failureStatus(report: string): string {
  const own = reportCode(report)?.split('.');
  const remote = /Remote host said: [245]\d\d[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(report);
  const m = own ?? remote?.slice(1);
  // A failed recipient is permanent by now (a timed-out deferral carries a 4.x.x code): report class 5.
  return m ? `5.${Number(m[1])}.${Number(m[2])}` : '5.0.0';
}

/** One header-safe line: newlines to spaces, 7-bit only (delivery-status is a 7-bit part). */
function oneLine(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
}

/** Diagnostic-Code (RFC 3464 §2.3.6): `smtp;` with the remote reply when there is one, else `x-qmail;`. */
function diagnosticCode(report: string): string {
  const said = /Remote host said: ([^\n]*)/.exec(report);
  if (said?.[1] !== undefined) return `smtp; ${oneLine(said[1])}`;
  return `x-qmail; ${oneLine(report)}`;
}

function perRecipient(f: BounceFailure): string {
  return (
    `Final-Recipient: rfc822; ${oneLine(f.address.replace(/\n/g, '_'))}\n` +
    'Action: failed\n' +
    `Status: ${failureStatus(f.report)}\n` +
    `Diagnostic-Code: ${diagnosticCode(f.report)}\n`
  );
}

const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s); // eslint-disable-line no-control-regex

/** Everything before the copy of the original (which starts with its Return-Path line). */
export function dsnHead(h: DsnHead): string {
  const text = humanText(h.config.bouncehost, h.double, h.failures);
  const b = h.boundary;
  return (
    `Date: ${rfc5322Date(new Date(h.now * 1000))}\n` +
    `From: ${quoteLocal(h.config.bouncefrom)}@${h.config.bouncehost}\n` +
    `To: ${quoteAddress(h.recipient)}\n` +
    'Subject: failure notice\n' +
    'MIME-Version: 1.0\n' +
    `Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="${b}"\n` +
    'Auto-Submitted: auto-replied\n' +
    '\n' +
    'This is a MIME-formatted delivery status notification (RFC 3464).\n' +
    '\n' +
    `--${b}\n` +
    (isAscii(text)
      ? 'Content-Type: text/plain; charset=us-ascii\n'
      : 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n') +
    'Content-Description: Notification\n' +
    '\n' +
    text +
    `--${b}\n` +
    'Content-Type: message/delivery-status\n' +
    'Content-Description: Delivery report\n' +
    '\n' +
    `Reporting-MTA: dns; ${oneLine(h.config.bouncehost)}\n` +
    `Arrival-Date: ${rfc5322Date(new Date(h.birth * 1000))}\n` +
    '\n' +
    h.failures.map(perRecipient).join('\n') +
    '\n' +
    `--${b}\n` +
    (h.fullCopy
      ? `Content-Type: message/rfc822\nContent-Description: ${h.double ? 'Original bounce' : 'Undelivered message'}\n`
      : 'Content-Type: text/rfc822-headers\nContent-Description: Header of the undelivered message\n') +
    '\n' +
    `Return-Path: <${quoteAddress(h.returnPath)}>\n`
  );
}

/** The closing delimiter; `needNewline` when the copied original did not end in a newline. */
export function dsnTail(boundary: string, needNewline: boolean): string {
  return `${needNewline ? '\n' : ''}--${boundary}--\n`;
}
