// The Received line qmail-smtpd prepends (docs/QMAIL.md B.8), with RFC 3848 protocol names.
import { asciiLower, rfc5322Date } from '../core/index.js';

export interface ReceivedFields {
  /** $TCPREMOTEHOST, else undefined ("unknown"). */
  readonly remoteHost?: string;
  /** The HELO/EHLO argument if one was given (may be ''). */
  readonly helo?: string;
  /** $TCPREMOTEINFO. */
  readonly remoteInfo?: string;
  /** $TCPREMOTEIP. */
  readonly remoteIp?: string;
  /** $TCPLOCALHOST, else $TCPLOCALIP. */
  readonly localHost?: string;
  /** RFC 3848: SMTP after HELO; ESMTP, ESMTPS (TLS), ESMTPA (AUTH), ESMTPSA after EHLO. */
  readonly protocol: 'SMTP' | 'ESMTP' | 'ESMTPS' | 'ESMTPA' | 'ESMTPSA';
}

/** B.8: every character other than letters, digits and `.@%+/=:-[]` is written as '?'. */
export function safeField(s: string): string {
  return s.replace(/[^A-Za-z0-9.@%+/=:\-[\]]/g, '?');
}

/** RFC 3848 protocol keyword for a session. */
export function protocolName(ehlo: boolean, tls: boolean, auth: boolean): ReceivedFields['protocol'] {
  if (!ehlo && !tls && !auth) return 'SMTP';
  return `ESMTP${tls ? 'S' : ''}${auth ? 'A' : ''}` as ReceivedFields['protocol'];
}

/** The full header line, two physical lines, LF-terminated (the queue stores LF line ends). */
export function receivedLine(f: ReceivedFields, date: Date): string {
  const host = f.remoteHost ?? 'unknown';
  let s = `Received: from ${safeField(host)}`;
  // The HELO part appears when an argument was given that differs from REMOTEHOST (ASCII case-insensitive).
  if (f.helo !== undefined && asciiLower(f.helo) !== asciiLower(host)) s += ` (HELO ${safeField(f.helo)})`;
  s += ' (';
  if (f.remoteInfo !== undefined) s += `${safeField(f.remoteInfo)}@`;
  s += `${safeField(f.remoteIp ?? 'unknown')})\n  by ${safeField(f.localHost ?? 'unknown')} with ${f.protocol}; ${rfc5322Date(date)}\n`;
  return s;
}
