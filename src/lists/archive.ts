// The list's archive: each post as a numbered file `archive/N` under the list's directory (N is also the VERP number).
import { existsSync, linkSync, readdirSync, unlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectoryError, type MailingList } from '../directory/index.js';
import { administers, listHome, type Actor, type ListCtx } from './admin.js';
import { readHead, syncDir, writeSynced } from './durable.js';
import { fieldValue, oneLine, parseMessage } from './message.js';

const numbers = (dir: string): number[] =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => /^[1-9]\d{0,9}$/.test(f))
        .map(Number)
    : [];

/**
 * Stores a post and returns its number: one more than the highest so far, taken by link(2), which fails when the
 * name exists, so two posts at once never share a number.
 */
export function archivePost(home: string, data: Buffer): number {
  const dir = join(home, 'archive');
  const tmp = join(dir, `.tmp.${process.pid}.${Date.now()}`);
  writeSynced(tmp, data, 0o640);
  try {
    let n = Math.max(0, ...numbers(dir)) + 1;
    for (;;) {
      try {
        linkSync(tmp, join(dir, String(n)));
        syncDir(dir);
        return n;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        n++;
      }
    }
  } finally {
    unlinkSync(tmp);
  }
}

export interface ArchiveEntry {
  readonly n: number;
  readonly from: string;
  readonly subject: string;
  readonly date: string;
}

/**
 * May `actor` read the list's archive? Members only: a subscriber, moderator or owner; an administrator of the list's
 * domain; the system administrator.
 */
async function mayRead(ctx: ListCtx, list: MailingList, actor: Actor): Promise<boolean> {
  if (administers(actor, list.domain) || actor.kind === 'system') return true;
  for (const role of ['subscriber', 'moderator', 'owner'] as const)
    if (await ctx.dir.lists.getMember(list.domain, list.local, role, actor.login)) return true;
  return false;
}

async function readable(ctx: ListCtx, list: MailingList, actor: Actor): Promise<string> {
  if (!(await mayRead(ctx, list, actor)))
    throw new DirectoryError(`the archive of ${list.local}@${list.domain} is for its members only`);
  return join(listHome(ctx.root, list.domain, list.local), 'archive');
}

/** The archive's posts, newest first (at most `limit`), for the web's list page. */
export async function archiveIndex(
  ctx: ListCtx,
  list: MailingList,
  actor: Actor,
  limit = 100,
): Promise<ArchiveEntry[]> {
  const dir = await readable(ctx, list, actor);
  const out: ArchiveEntry[] = [];
  for (const n of numbers(dir)
    .sort((a, b) => b - a)
    .slice(0, limit)) {
    // the header only (the first 64 KiB), read asynchronously: the web admin's root supervisor answers this
    const head = await readHead(join(dir, String(n)), 65_536);
    if (head === null) continue;
    const p = parseMessage(head);
    const v = (name: string): string => oneLine(fieldValue(p, name) ?? '');
    out.push({ n, from: v('from'), subject: v('subject'), date: v('date') });
  }
  return out;
}

/** One archived post, as it was sent (without the per-subscriber fields); null when there is no such post. */
export async function archiveMessage(ctx: ListCtx, list: MailingList, actor: Actor, n: number): Promise<Buffer | null> {
  const dir = await readable(ctx, list, actor);
  if (!Number.isSafeInteger(n) || n < 1) return null;
  const path = join(dir, String(n));
  return readFile(path).catch(() => null);
}
