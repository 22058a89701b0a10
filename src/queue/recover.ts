// Recovery at start: finish or undo every intermediate state of docs/QUEUE.md; damage goes to corrupt/.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueId } from './types.js';
import { type Subdir, TMP_MAX_AGE_MS, type TmpName, isQueueId, parseTmpName } from './layout.js';
import { errCode, fsyncDir, moveToCorrupt, pidAlive, queueError, unlinkQuiet } from './durable.js';
import { decodeEnvelope } from './envelope.js';
import type { FileQueue } from './store.js';
import { settleJournal } from './journal.js';

export interface RecoverOptions {
  /** Also check every message's sha256 against its envelope (reads every message). */
  readonly verify?: boolean;
}

export interface RecoverReport {
  /** Committed messages found intact. */
  kept: number;
  /** Uncommitted injects undone (ids). */
  undone: QueueId[];
  /** Interrupted removals finished (ids). */
  removed: QueueId[];
  /** Unacknowledged envelope rewrites dropped. */
  staleUpdates: number;
  /** Tmp files of live writers, left alone. */
  inFlight: number;
  /** Paths now under corrupt/. */
  corrupt: string[];
  /** Ids whose files a power cut had damaged, rewritten from the journal's records (journal.ts). */
  restored: QueueId[];
}

/** Is the writer of a tmp file still at work? (pid alive and not too old; this process: only its own ids). */
function writerAlive(t: TmpName, changedMs: number, now: number, ownInFlight: ReadonlySet<QueueId>): boolean {
  if (now - changedMs > TMP_MAX_AGE_MS) return false;
  if (t.pid === process.pid) return ownInFlight.has(t.id);
  return pidAlive(t.pid);
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    throw queueError(`cannot list ${dir}`, err);
  }
}

/** Does env/X exist right now? (the last look before a mess/ file is called unexplained) */
async function committedNow(envPath: string): Promise<boolean> {
  try {
    await lstat(envPath);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return false;
    throw queueError(`cannot look at ${envPath}`, err);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The four listings recovery works from, taken in this order (see recoverListed). */
export interface QueueListing {
  readonly mess: string[];
  readonly tmp: string[];
  readonly env: string[];
  readonly trash: string[];
}

/**
 * Listing order matters while other processes inject: mess/, then tmp/, then env/, then trash/.
 * An id linked into mess/ before our listing still has its tmp envelope, or else is already in env/.
 */
export async function listQueue(q: FileQueue): Promise<QueueListing> {
  const L = q.layout;
  const mess = await list(L.sub('mess'));
  const tmp = await list(L.sub('tmp'));
  const env = await list(L.sub('env'));
  const trash = await list(L.sub('trash'));
  return { mess, tmp, env, trash };
}

export async function recoverQueue(q: FileQueue, opts: RecoverOptions): Promise<RecoverReport> {
  // First the journal: it rewrites what a power cut damaged, so the checks below find those messages intact.
  const { restored } = await settleJournal(q.layout, q.owner);
  const rep = await recoverListed(q, await listQueue(q), opts);
  rep.restored.push(...restored);
  return rep;
}

/** Recovery from listings taken by listQueue (other processes may have moved on since: every step allows it). */
export async function recoverListed(q: FileQueue, listing: QueueListing, opts: RecoverOptions): Promise<RecoverReport> {
  const L = q.layout;
  const now = q.clock();
  const rep: RecoverReport = {
    kept: 0,
    undone: [],
    removed: [],
    staleUpdates: 0,
    inFlight: 0,
    corrupt: [],
    restored: [],
  };
  const corruptDir = L.sub('corrupt');
  const toCorrupt = async (path: string, name: string): Promise<void> => {
    try {
      rep.corrupt.push(await moveToCorrupt(path, corruptDir, name));
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw queueError(`cannot move ${path} to corrupt/`, err);
    }
  };
  const unexplained = async (d: Subdir, names: string[]): Promise<void> => {
    for (const n of names) await toCorrupt(join(L.sub(d), n), `${d}.${n}`);
  };

  const { mess: messNames, tmp: tmpNames, env: envNames, trash: trashNames } = listing;

  // Ids whose inject was still under way at the tmp/ listing: their mess/ entry is not ours to judge.
  const liveEnv = new Set<QueueId>();
  const staleEnv = new Set<QueueId>();
  const staleInject = new Set<QueueId>();
  for (const name of tmpNames) {
    const path = join(L.sub('tmp'), name);
    const t = parseTmpName(name);
    if (!t) {
      await unexplained('tmp', [name]);
      continue;
    }
    // when the file last changed: the later of mtime and ctime (a spare taken into tmp/ keeps the old message's mtime
    // until its first write, but the rename that took it set its ctime, spare.ts)
    let changed: number;
    try {
      const st = await lstat(path);
      changed = Math.max(st.mtimeMs, st.ctimeMs);
    } catch {
      // Gone since the listing: its writer finished meanwhile (committed after our env/ listing, or undid
      // itself). Either way the id was live: never judge its mess/ entry unexplained (that lost acked mail).
      if (t.kind === 'env') liveEnv.add(t.id);
      continue;
    }
    if (writerAlive(t, changed, now, q.inFlight)) {
      rep.inFlight++;
      if (t.kind === 'env') liveEnv.add(t.id);
      continue;
    }
    if (t.kind === 'env') staleEnv.add(t.id);
    if (t.kind === 'upd') rep.staleUpdates++;
    else staleInject.add(t.id);
    await unlinkQuiet(path);
  }

  const envIds = new Set<QueueId>();
  for (const name of envNames) if (isQueueId(name)) envIds.add(name);
  await unexplained(
    'env',
    envNames.filter((n) => !isQueueId(n)),
  );

  // D: the removal was decided; finish it (trash/ is authoritative over a resurrected env/).
  const trashed = new Set<QueueId>();
  for (const name of trashNames) {
    if (!isQueueId(name)) {
      await unexplained('trash', [name]);
      continue;
    }
    trashed.add(name);
    await unlinkQuiet(L.env(name));
    await unlinkQuiet(L.mess(name));
    await unlinkQuiet(L.trash(name));
    envIds.delete(name);
    rep.removed.push(name);
  }

  const messIds = new Set<QueueId>();
  for (const name of messNames) {
    if (!isQueueId(name)) {
      await unexplained('mess', [name]);
      continue;
    }
    messIds.add(name);
    if (envIds.has(name) || trashed.has(name) || liveEnv.has(name)) continue;
    if (staleEnv.has(name)) {
      await unlinkQuiet(L.mess(name)); // R3: never acknowledged, undo
    } else if (await committedNow(L.env(name))) {
      continue; // committed by another process after our env/ listing: kept (the next recovery checks it)
    } else {
      await toCorrupt(L.mess(name), `${name}.mess`);
    }
  }
  for (const id of staleInject) if (!envIds.has(id) && !trashed.has(id)) rep.undone.push(id);

  // Q: check every committed envelope against its message.
  for (const id of envIds) {
    let text: string;
    try {
      text = await readFile(L.env(id), 'utf8');
    } catch (err) {
      if (errCode(err) === 'ENOENT') continue; // removed meanwhile
      throw queueError(`cannot read envelope ${id}`, err);
    }
    const e = decodeEnvelope(text, id);
    let size: number | undefined;
    try {
      size = (await stat(L.mess(id))).size;
    } catch {
      size = undefined;
    }
    if (size === undefined) {
      await toCorrupt(L.env(id), `${id}.env`);
      continue;
    }
    if (typeof e === 'string' || e.size !== size || (opts.verify && (await sha256File(L.mess(id))) !== e.sha256)) {
      await toCorrupt(L.env(id), `${id}.env`);
      await toCorrupt(L.mess(id), `${id}.mess`);
      continue;
    }
    rep.kept++;
  }

  // Wake-up sockets of processes that are gone.
  for (const name of await list(L.sub('wake'))) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1] ?? NaN);
    if (pid !== process.pid && !pidAlive(pid)) await unlinkQuiet(join(L.sub('wake'), name));
  }

  try {
    for (const d of ['tmp', 'mess', 'env', 'trash', 'corrupt'] as const) await fsyncDir(L.sub(d));
  } catch (err) {
    throw queueError('cannot sync the queue directories', err);
  }
  return rep;
}
