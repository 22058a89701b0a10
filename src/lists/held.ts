// The moderation queue as the web admin shows it: the held posts (`mod/ID`), and a moderator's decision made in the
// browser carried out the way a decision by mail is — a message to the list's accept or reject cookie address.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectoryError, type MailingList } from '../directory/index.js';
import { listHome, mayManageList, type Actor, type ListCtx } from './admin.js';
import { makeCookie } from './cookie.js';
import { readHead } from './durable.js';
import { fieldValue, oneLine, parseMessage } from './message.js';
import { queueOutbox, type Outbox } from './send.js';

export interface HeldPost {
  /** The id in `mod/ID` (16 hex digits). */
  readonly id: string;
  /** The envelope sender. */
  readonly sender: string;
  readonly from: string;
  readonly subject: string;
  readonly date: string;
  /** The start of the message as text (at most 4 KiB), for the moderator to read. */
  readonly excerpt: string;
}

/** May `actor` decide the list's held posts? Its moderators, and whoever may manage the list. */
async function mayModerate(ctx: ListCtx, list: MailingList, actor: Actor): Promise<boolean> {
  if (actor.kind === 'login' && (await ctx.dir.lists.getMember(list.domain, list.local, 'moderator', actor.login)))
    return true;
  return mayManageList(ctx, list, actor);
}

async function must(ctx: ListCtx, list: MailingList, actor: Actor): Promise<void> {
  if (!(await mayModerate(ctx, list, actor)))
    throw new DirectoryError(
      `${actor.kind === 'login' ? actor.login : 'you'} is not a moderator of ${list.local}@${list.domain}`,
    );
}

const HELD_ID = /^[0-9a-f]{16}$/;

/** The posts waiting for a moderator, oldest first by id order of the files (at most `limit`). */
export async function heldPosts(ctx: ListCtx, list: MailingList, actor: Actor, limit = 100): Promise<HeldPost[]> {
  await must(ctx, list, actor);
  const dir = join(listHome(ctx.root, list.domain, list.local), 'mod');
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: HeldPost[] = [];
  for (const id of names.filter((n) => HELD_ID.test(n)).slice(0, limit)) {
    // the sender's line and the start of the post (a held post may be 35 MiB)
    const raw = await readHead(join(dir, id), 65_536);
    if (raw === null) continue; // decided meanwhile
    const nl = raw.indexOf(10);
    const data = raw.subarray(nl + 1);
    const p = parseMessage(data);
    const v = (name: string): string => oneLine(fieldValue(p, name) ?? '');
    out.push({
      id,
      sender: raw.subarray(0, Math.max(0, nl)).toString('latin1'),
      from: v('from'),
      subject: v('subject'),
      date: v('date'),
      excerpt: data.subarray(0, 4096).toString('utf8'),
    });
  }
  return out;
}

/**
 * A moderator's decision in the browser: a message from the moderator to the post's accept (or reject) address with
 * a fresh cookie, queued like any mail. list-manage then does what it does with a reply by mail (one code path, run
 * as the domain's account): the post is sent or the sender told. DirectoryError when the post is not waiting.
 */
export async function decideHeld(
  ctx: ListCtx,
  list: MailingList,
  actor: Actor,
  id: string,
  accept: boolean,
  outbox?: Outbox,
): Promise<string> {
  await must(ctx, list, actor);
  if (!HELD_ID.test(id)) throw new DirectoryError(`${JSON.stringify(id)} is not a held post's id`);
  if ((await readHead(join(listHome(ctx.root, list.domain, list.local), 'mod', id), 1)) === null)
    throw new DirectoryError(`the post ${id} is no longer waiting (already decided?)`);
  const kind = accept ? 'accept' : 'reject';
  const to = `${list.local}-${kind}-${id}.${makeCookie(list.secret, kind, id, Date.now())}@${list.domain}`;
  const box = outbox ?? (await queueOutbox(ctx.root));
  const who = actor.kind === 'login' ? actor.login : `${list.local}-owner@${list.domain}`;
  try {
    await box.reply({
      sender: who,
      to,
      from: `<${who}>`,
      subject: `${kind} ${id}`,
      text: `${who} decided in the web admin: ${kind}.\n`,
    });
  } finally {
    if (outbox === undefined) await box.close();
  }
  return `post ${id} of ${list.local}@${list.domain}: ${accept ? 'accepted, on its way to the subscribers' : 'rejected'}`;
}
