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
