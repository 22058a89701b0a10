// The header lines and environment qmail-local computes for every delivery (docs/QMAIL.md D.2).
import { quoteLocal } from '../core/index.js';

export interface LocalArgs {
  readonly user: string;
  readonly home: string;
  readonly local: string;
  readonly dash: string;
  readonly ext: string;
  readonly domain: string;
  readonly sender: string;
  readonly defaultDelivery: string;
}

/** The texts qmail-local prepends or exports (each ends in `\n`). */
export interface HeaderLines {
  readonly recipient: string;
  readonly dtline: string;
  readonly rpline: string;
  readonly ufline: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** qmail's myctime(): `Www Mon DD HH:MM:SS YYYY` in UTC, day zero-padded. */
export function qmailCtime(d: Date): string {
  return (
    `${DAYS[d.getUTCDay()] ?? ''} ${MONTHS[d.getUTCMonth()] ?? ''} ${two(d.getUTCDate())} ` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${d.getUTCFullYear()}`
  );
}

/** qmail's quote2(): quote the part before the last `@` (the whole text if there is none) when needed. */
export function quoteSender(sender: string): string {
  if (sender === '') return '';
  const at = sender.lastIndexOf('@');
  if (at < 0) return quoteLocal(sender);
  return quoteLocal(sender.slice(0, at)) + sender.slice(at);
}

export function headerLines(a: LocalArgs, now: Date): HeaderLines {
  const recipient = `${a.local}@${a.domain}`;
  const dtline = `Delivered-To: ${recipient.replace(/\n/g, '_')}\n`;
  const rpline = `Return-Path: <${quoteSender(a.sender).replace(/\n/g, '_')}>\n`;
  const from = a.sender === '' ? 'MAILER-DAEMON' : a.sender.replace(/[ \t\n]/g, '-');
  const ufline = `From ${from} ${qmailCtime(now)}\n`;
  return { recipient, dtline, rpline, ufline };
}

/** Text after the first `-` (empty if none): EXT2..EXT4. */
const afterDash = (s: string): string => {
  const i = s.indexOf('-');
  return i < 0 ? '' : s.slice(i + 1);
};
/** Text before the last `.` (unchanged if none): HOST2..HOST4. */
const beforeDot = (s: string): string => {
  const i = s.lastIndexOf('.');
  return i < 0 ? s : s.slice(0, i);
};

/**
 * The complete environment of a `|program` line: PATH and qmail-local's variables, nothing inherited
 * (qmail-start runs under `env -`; FORMAT.md 2).
 */
export function programEnv(
  a: LocalArgs,
  h: HeaderLines,
  x: { newSender: string; defaultPart?: string; path: string },
): Record<string, string> {
  const ext2 = afterDash(a.ext);
  const ext3 = afterDash(ext2);
  const host2 = beforeDot(a.domain);
  const host3 = beforeDot(host2);
  const env: Record<string, string> = {
    PATH: x.path,
    USER: a.user,
    HOME: a.home,
    LOCAL: a.local,
    HOST: a.domain,
    RECIPIENT: h.recipient,
    DTLINE: h.dtline,
    SENDER: a.sender,
    NEWSENDER: x.newSender,
    RPLINE: h.rpline,
    UFLINE: h.ufline,
    EXT: a.ext,
    EXT2: ext2,
    EXT3: ext3,
    EXT4: afterDash(ext3),
    HOST2: host2,
    HOST3: host3,
    HOST4: beforeDot(host3),
  };
  if (x.defaultPart !== undefined) env['DEFAULT'] = x.defaultPart;
  return env;
}

/** The default PATH of programs: the mail root's bin/ first. */
export const defaultPath = (root: string): string => `${root}/bin:/usr/local/bin:/usr/bin:/bin`;
