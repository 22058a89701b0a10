// Maildir++ quota (the maildirsize file Courier and Dovecot share): read usage, check it, record deliveries and removals.
import {
  appendFileSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  openSync,
  promises as fsp,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface Usage {
  readonly bytes: number;
  readonly messages: number;
}

/** Replaces a small file whole: a temporary file beside it, fsync, rename (maildirsize recalculations, usage caches). */
export function writeAtomic(path: string, text: string, mode = 0o644): void {
  const tmp = `${path}.tmp.${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, Buffer.from(text, 'latin1'));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** The quota definition line: `NNNS,MMMC` (either part may be missing). */
export function quotaLine(bytes: number | null, messages: number | null): string {
  return [bytes === null ? null : `${bytes}S`, messages === null ? null : `${messages}C`]
    .filter((x) => x !== null)
    .join(',');
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

/** The sum of maildirsize's `bytes count` lines (negative for removals); other lines are skipped. */
export function sumSizeLines(lines: readonly string[]): Usage {
  let bytes = 0;
  let messages = 0;
  for (const l of lines) {
    const m = /^\s*(-?\d+)\s+(-?\d+)\s*$/.exec(l);
    if (!m) continue;
    bytes += Number(m[1]);
    messages += Number(m[2]);
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
  return sumSizeLines(lines.slice(1));
}

/** Would one more message of `size` bytes pass either limit (null: no limit)? */
export function overQuota(u: Usage, size: number, bytes: number | null, messages: number | null): boolean {
  return (bytes !== null && u.bytes + size > bytes) || (messages !== null && u.messages + 1 > messages);
}

/** Appends one delivery to maildirsize (an O_APPEND write of one short line, as Maildir++ specifies). */
export function recordDelivery(maildir: string, bytes: number): void {
  appendFileSync(join(maildir, 'maildirsize'), `${bytes} 1\n`, { mode: 0o600 });
}

/**
 * Appends `-bytes -count` for messages removed (POP3 deletions), only when maildirsize exists: it is never created
 * here, the quota's owner (delivery) makes it. Returns why it could not be written (the messages are gone either
 * way; Maildir++ readers recount a maildirsize that is off), or undefined.
 */
export async function recordRemoval(maildir: string, bytes: number, count: number): Promise<string | undefined> {
  const path = join(maildir, 'maildirsize');
  try {
    const fh = await fsp.open(path, constants.O_WRONLY | constants.O_APPEND);
    try {
      await fh.write(`-${bytes} -${count}\n`);
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'ENOENT') return `maildirsize not updated (${code})`;
  }
  return undefined;
}

/** Usage at or above this share of a quota brings the one warning message (`quotawarn` marks it as sent). */
const WARN_RATIO = 0.9;

/** Is usage at or past WARN_RATIO of either limit? */
export function nearQuota(u: Usage, bytes: number | null, messages: number | null): boolean {
  return (
    (bytes !== null && bytes > 0 && u.bytes >= bytes * WARN_RATIO) ||
    (messages !== null && messages > 0 && u.messages >= messages * WARN_RATIO)
  );
}
