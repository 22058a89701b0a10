// The one RFC 5322 date formatter: qmail's date822fmt, used by the queue, smtpd, inject and bounce.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/**
 * qmail's date822fmt: `22 Nov 2026 03:01:02 -0000`. Always UTC, written as `-0000` (RFC 5322 3.3: the time
 * is UTC and says nothing about the local zone), no day of the week, the day not padded. qmail writes every
 * Date and Received field this way (qmail-queue, qmail-smtpd, qmail-inject, qmail-send's bounces), so quail's
 * compare byte for byte with qmail's.
 */
export function rfc5322Date(d: Date): string {
  return (
    `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()] ?? '???'} ${d.getUTCFullYear()} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} -0000`
  );
}
