// The list programs as `.qmail` lines run them: `|quail list-post DOMAIN LIST`, `|quail list-manage DOMAIN LIST`.
import { existsSync } from 'node:fs';
import { errText, QuailError } from '../core/index.js';
import { Control } from '../control/index.js';
import { openDirectory, type Directory } from '../directory/index.js';
import { manage } from './manage.js';
import { post, type ProgramCtx, type ProgramResult } from './post.js';
import { queueOutbox, type Outbox } from './send.js';
import { listSocketPath, socketWriter } from './socket.js';
import { directWriter, type BounceRule, type ListWriter } from './writer.js';

export const bounceRule = (control: Control): BounceRule => ({ days: control.number('listbouncedays').value });

/**
 * How this process changes the lists: directly when it may write the directory (root; a server not started as
 * root, where every process is the same user), else through the supervisor's run/lists.sock.
 */
export async function chooseWriter(root: string): Promise<ListWriter> {
  const sock = listSocketPath(root);
  if (process.getuid?.() !== 0 && existsSync(sock)) return socketWriter(sock);
  const dir = await openDirectory({ root });
  return directWriter(dir.lists, bounceRule(new Control(root)), Date.now, () => dir.close());
}

export interface ProgramRun {
  readonly root: string;
  readonly kind: 'post' | 'manage';
  /** DOMAIN LIST from the `.qmail` line. */
  readonly args: readonly string[];
  /** qmail-local's environment: SENDER, DEFAULT (the part after `LIST-`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly message: Buffer;
  readonly now?: number;
  /** For tests: another outbox or writer than the queue's and chooseWriter's. */
  readonly outbox?: Outbox;
  readonly writer?: ListWriter;
}

/** One run; never throws: trouble is exit 111 (qmail-local retries), a request that cannot be done 100. */
export async function runListProgram(r: ProgramRun): Promise<ProgramResult> {
  const [domain, local] = r.args;
  if (domain === undefined || local === undefined || r.args.length !== 2)
    return { exit: 111, text: `usage: quail list-${r.kind} DOMAIN LIST (from the list's .qmail file). (#4.3.0)` };
  let dir: Directory | undefined;
  let writer: ListWriter | undefined = r.writer;
  let outbox: Outbox | undefined = r.outbox;
  try {
    dir = await openDirectory({ root: r.root, readonly: true });
    const list = await dir.lists.get(domain, local);
    if (!list)
      return { exit: 100, text: `There is no list ${local}@${domain} (any more): run quail list show. (#5.1.1)` };
    writer ??= await chooseWriter(r.root);
    outbox ??= await queueOutbox(r.root);
    const control = new Control(r.root);
    const c: ProgramCtx = {
      root: r.root,
      list,
      lists: dir.lists,
      writer,
      outbox,
      sender: r.env['SENDER'] ?? '',
      now: r.now ?? Date.now(),
      listUrl: control.single('listurl').value,
      bounce: bounceRule(control),
    };
    return r.kind === 'post' ? await post(c, r.message) : await manage(c, r.env['DEFAULT'] ?? '', r.message);
  } catch (err) {
    const permanent = err instanceof QuailError && !err.temporary;
    return { exit: permanent ? 100 : 111, text: `list ${local}@${domain}: ${errText(err)}. (#4.3.0)` };
  } finally {
    if (!r.outbox) await outbox?.close().catch(() => undefined);
    if (!r.writer) await writer?.close().catch(() => undefined);
    await dir?.close().catch(() => undefined);
  }
}
