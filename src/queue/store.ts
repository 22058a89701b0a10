// FileQueue: the durable queue store (qmail-queue's job): inject, read, update, remove, hold (docs/QUEUE.md).
import { createHash } from 'node:crypto';
import { closeSync, fchownSync, ftruncateSync, linkSync, readFileSync, renameSync } from 'node:fs';
import { chown, mkdir, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { QuailError } from '../core/index.js';
import type { NewMessage, QueueId, QueueStore, QueuedMessage, RecipientState, WakeListener } from './types.js';
import { Layout, SUBDIRS, isQueueId, newQueueId } from './layout.js';
import {
  DirSyncer,
  type Owner,
  datasync,
  errCode,
  exists,
  moveToCorrupt,
  queueError,
  unlinkQuiet,
  writeAllSync,
  writevAllSync,
  writeSynced,
  createFiles,
} from './durable.js';
import { type Envelope, decodeEnvelope, encodeEnvelope, receivedLine, toQueued } from './envelope.js';
import { Waker } from './wake.js';
import { SpareFiles } from './spare.js';
import { type RecoverOptions, type RecoverReport, recoverQueue } from './recover.js';
import { JOURNAL_MAX_MESSAGE, Journal, type JournalOptions } from './journal.js';

export interface OpenOptions {
  /** Milliseconds since the epoch; default Date.now. */
  readonly clock?: () => number;
  /**
   * Say `new` on the wake-up sockets after each inject (default true). false for a process whose injections reach
   * the scheduler another way: quail start's SMTP child, whose `smtp.queued` root passes on to the send child.
   */
  readonly wake?: boolean;
  /** Create <root>/queue if missing (default true); false makes a missing queue a clear error. */
  readonly create?: boolean;
  /**
   * Group commit (journal.ts; docs/QUEUE.md): injects of this process share one fsync of a journal segment instead
   * of two of their own. For a long-lived process that injects much (quail start's SMTP processes); `close()` retires
   * its segments.
   */
  readonly journal?: boolean | JournalOptions;
}

/** Opens (and with `create`, makes) the queue in <root>/queue. */
export async function openQueue(root: string, opts: OpenOptions = {}): Promise<FileQueue> {
  const dir = join(root, 'queue');
  if (opts.create === false && !(await exists(dir).catch(() => false))) {
    throw new QuailError(`no queue at ${dir}: run quail init, or give --root DIR`, true);
  }
  let owner: Owner | undefined;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) {
      const st = await stat(dir);
      if (st.uid !== 0 || st.gid !== 0) owner = { uid: st.uid, gid: st.gid };
    }
    for (const d of SUBDIRS) {
      const made = await mkdir(join(dir, d), { recursive: true, mode: 0o700 });
      if (made && owner) await chown(join(dir, d), owner.uid, owner.gid);
    }
  } catch (err) {
    throw queueError(`cannot create the queue directories in ${dir}`, err);
  }
  const q = new FileQueue(dir, opts.clock ?? Date.now, owner);
  if (opts.wake === false) q.wakeOnInject = false;
  if (opts.journal) {
    q.journal = new Journal(q, opts.journal === true ? {} : opts.journal);
    void q.journal.adopt(); // what a killed predecessor left (journal.ts)
  }
  return q;
}

/** A prepared message in tmp/ (data and envelope fsynced), ready for the commit. */
export interface Prepared {
  readonly tmpMess: string;
  readonly env: Envelope;
}

export class FileQueue implements QueueStore {
  readonly layout: Layout;
  /** Ids whose tmp files this store is writing right now (recover leaves them alone). */
  readonly inFlight = new Set<QueueId>();
  readonly messSync: DirSyncer;
  readonly envSync: DirSyncer;
  readonly waker: Waker;
  /** Emptied files of removed messages, taken by inject instead of new ones (spare.ts). */
  readonly spares: SpareFiles;
  /** Whether inject() says `new` on the wake-up sockets (OpenOptions.wake). */
  wakeOnInject = true;
  /** The group commit's journal, when this store has one (OpenOptions.journal). */
  journal: Journal | undefined;
  private closing: Promise<void> = Promise.resolve();
  private readonly serialById = new Map<QueueId, Promise<unknown>>();
  private updCounter = 0;

  constructor(
    readonly dir: string,
    readonly clock: () => number,
    /** When root runs a tool on a queue owned by another account, new files are given to that account. */
    readonly owner?: Owner,
  ) {
    this.layout = new Layout(dir);
    this.messSync = new DirSyncer(this.layout.sub('mess'));
    this.envSync = new DirSyncer(this.layout.sub('env'));
    this.waker = new Waker(this.layout.sub('wake'), this.layout.sub('env'), owner);
    this.spares = new SpareFiles(this.layout.sub('spare'));
  }

  /**
   * The two files of an inject, opened for writing at offset 0: spares where there are some (no inode made), new files
   * in tmp/ for the rest (both made in one trip off the event loop when neither is a spare). The envelope's tmp/ name
   * exists first, so a spare taken for the message can go straight to `mess/X` (`placed`): one rename fewer per
   * message, and every `mess/X` a crash can leave still has its writer's tmp/ envelope beside it, state R3 of
   * docs/QUEUE.md. On failure none is left behind.
   */
  private async injectFiles(
    tmpMess: string,
    tmpEnv: string,
    mess: string,
  ): Promise<{
    messFd: number;
    envFd: number;
    placed: boolean;
    messWas: number | undefined;
    envWas: number | undefined;
  }> {
    const envSpare = this.spares.take(tmpEnv);
    const messSpare = envSpare === undefined ? this.spares.take(tmpMess) : this.spares.take(mess);
    const placed = envSpare !== undefined && messSpare !== undefined;
    const owner = this.owner;
    try {
      if (owner) for (const t of [envSpare, messSpare]) if (t !== undefined) fchownSync(t.fd, owner.uid, owner.gid);
      const missing = [messSpare === undefined ? tmpMess : undefined, envSpare === undefined ? tmpEnv : undefined];
      const made = await createFiles(
        missing.filter((p): p is string => p !== undefined),
        owner,
      );
      // how long each file is now: a new one is empty; a spare is as long as its name says (undefined: not known)
      return {
        messFd: messSpare?.fd ?? (made.shift() as number),
        envFd: envSpare?.fd ?? (made.shift() as number),
        placed,
        messWas: messSpare === undefined ? 0 : messSpare.size,
        envWas: envSpare === undefined ? 0 : envSpare.size,
      };
    } catch (err) {
      if (messSpare !== undefined) {
        closeSync(messSpare.fd);
        await unlinkQuiet(placed ? mess : tmpMess);
      }
      if (envSpare !== undefined) {
        closeSync(envSpare.fd);
        await unlinkQuiet(tmpEnv);
      }
      throw err;
    }
  }

  async inject(m: NewMessage): Promise<QueueId> {
    const now = this.clock();
    const id = newQueueId(now);
    const tmpMess = this.layout.tmp(id, 'mess');
    const tmpEnv = this.layout.tmp(id, 'env');
    const messPath = this.layout.mess(id);
    let placed = false;
    this.inFlight.add(id);
    try {
      let env: Envelope | undefined;
      let envBytes: Buffer | undefined;
      let files: Unsynced;
      // the message's bytes, kept for the journal's record while it is small enough (JOURNAL_MAX_MESSAGE)
      const kept: Buffer[] | undefined = this.journal ? [] : undefined;
      try {
        // Steps 1 and 2 of docs/QUEUE.md, written but not yet synced (the envelope needs the message's size and
        // sha256, known once the data is written): the syncs of both files wait with the directories' (step 5).
        // A stream destroyed by its producer while the files are being made must not raise an unhandled 'error':
        // writeMessage's loop sees it as a failed (errored or prematurely closed) stream and throws.
        if (!Buffer.isBuffer(m.data)) m.data.on('error', () => undefined);
        // spares, or both files made at once off the event loop (durable.ts createFiles says why)
        const taken = await this.injectFiles(tmpMess, tmpEnv, messPath);
        placed = taken.placed;
        const { messFd, envFd } = taken;
        files = await writeMessage(
          messFd,
          taken.messWas,
          envFd,
          receivedLine(m.injector, process.pid, now),
          m.data,
          kept,
          (written) => {
            const recipients: RecipientState[] = m.recipients.map((original) => ({
              original,
              status: 'todo',
              attempts: 0,
            }));
            env = {
              id,
              birth: Math.floor(now / 1000),
              sender: m.sender,
              recipients,
              held: false,
              size: written.size,
              sha256: written.sha256,
              meta: { ...(m.meta ?? {}) },
              queueName: m.queueName ?? 'default',
            };
            envBytes = Buffer.from(encodeEnvelope(env));
            writeAllSync(envFd, envBytes);
            cutTo(envFd, envBytes.length, taken.envWas); // a spare's old tail (writeMessage says why)
          },
        );
      } catch (err) {
        if (placed) await unlinkQuiet(messPath); // before the envelope's tmp/ name: never mess/X without it
        await unlinkQuiet(tmpEnv);
        await unlinkQuiet(tmpMess);
        throw queueError('cannot write the message to the queue', err);
      }
      if (env === undefined || envBytes === undefined) {
        files.close();
        if (placed) await unlinkQuiet(messPath);
        await unlinkQuiet(tmpEnv);
        await unlinkQuiet(tmpMess);
        throw queueError('cannot write the message to the queue', new Error('no envelope'));
      }
      // With a journal, one record and the segment's grouped fsync stand for the two files' own syncs and, where the
      // boot id can be read, for their directory entries (journal.ts says why that keeps the contract); a message too
      // large to keep in memory syncs its files and the directories as before.
      const journal = this.journal;
      const record = journal && kept?.length ? { env: envBytes, mess: kept } : undefined;
      const syncs = journal && record ? () => [journal.commit(id, record.env, record.mess)] : files.sync;
      try {
        await this.linkIn(
          { tmpMess, env },
          tmpEnv,
          placed ? 'placed' : 'rename',
          syncs,
          !(record && journal?.coversEntries === true),
        );
      } finally {
        files.close();
      }
    } finally {
      this.inFlight.delete(id);
    }
    if (this.wakeOnInject) this.waker.notifyNew();
    return id;
  }

  /**
   * Steps 2–5 of docs/QUEUE.md: envelope to tmp/, link the message into mess/, link the envelope into env/
   * (the commit), grouped directory fsyncs. On failure everything is undone and a temporary error thrown.
   * Ids already taken fail with EEXIST (link never overwrites); import picks another id then.
   */
  async commit(p: Prepared): Promise<void> {
    const tmpEnv = this.layout.tmp(p.env.id, 'env');
    try {
      await writeSynced(tmpEnv, encodeEnvelope(p.env), this.owner);
    } catch (err) {
      await unlinkQuiet(tmpEnv);
      await unlinkQuiet(p.tmpMess);
      if (errCode(err) === 'EEXIST') throw err;
      throw queueError('cannot commit the message to the queue', err);
    }
    await this.linkIn(p, tmpEnv, 'link');
  }

  /**
   * Steps 3–5, after both tmp files are written: `fileSyncs` starts their fdatasyncs (inject), or they were synced
   * before (import's commit). Every sync of the message waits at once, after the moves: one wait for the disk.
   * `how`: inject `rename`s its files into place (its id is new and random, docs/QUEUE.md step 3 says why that is
   * enough), only the envelope when its message is a spare taken straight into `mess/` (`placed`); import's commit
   * `link`s them, because link never overwrites and an id it brings may already be taken.
   * `dirs`: sync mess/ and env/ too (not when the journal's record stands for their entries).
   */
  private async linkIn(
    p: Prepared,
    tmpEnv: string,
    how: 'rename' | 'placed' | 'link',
    fileSyncs: () => Promise<void>[] = () => [],
    dirs = true,
  ): Promise<void> {
    const { id } = p.env;
    const mess = this.layout.mess(id);
    const env = this.layout.env(id);
    const place = how === 'link' ? linkSync : renameSync;
    let stage = 1;
    try {
      if (how !== 'placed') place(p.tmpMess, mess);
      stage = 2;
      place(tmpEnv, env); // the commit point
      stage = 3;
      if (how === 'link') {
        await unlinkQuiet(p.tmpMess);
        await unlinkQuiet(tmpEnv);
      }
      // The two files and both directories at once: one wait for the disk before the 250, not three (docs/QUEUE.md,
      // step 5, says why nothing needs to be on disk between the writes and the moves).
      await Promise.all(dirs ? [...fileSyncs(), this.messSync.sync(), this.envSync.sync()] : fileSyncs());
    } catch (err) {
      if (stage >= 3) await unlinkQuiet(env);
      if (stage >= 2) await unlinkQuiet(mess);
      await unlinkQuiet(tmpEnv);
      await unlinkQuiet(p.tmpMess);
      if (errCode(err) === 'EEXIST' && stage < 3) throw err;
      throw queueError('cannot commit the message to the queue', err);
    }
  }

  async ids(): Promise<QueueId[]> {
    let names: string[];
    try {
      names = await readdir(this.layout.sub('env'));
    } catch (err) {
      throw queueError('cannot list the queue', err);
    }
    return names.filter(isQueueId).sort();
  }

  /** The envelope with its checksum; undefined if not queued. A damaged envelope goes to corrupt/. */
  async envelope(id: QueueId): Promise<Envelope | undefined> {
    if (!isQueueId(id)) return undefined;
    let text: string;
    try {
      text = readFileSync(this.layout.env(id), 'utf8'); // a few hundred bytes: see durable.ts on sync calls
    } catch (err) {
      if (errCode(err) === 'ENOENT') return undefined;
      throw queueError(`cannot read envelope ${id}`, err);
    }
    const e = decodeEnvelope(text, id);
    if (typeof e === 'string') {
      await this.quarantine(id);
      return undefined;
    }
    return e;
  }

  async read(id: QueueId): Promise<QueuedMessage | undefined> {
    const e = await this.envelope(id);
    return e && toQueued(e);
  }

  /** Moves env/X and mess/X to corrupt/ (never deletes). */
  async quarantine(id: QueueId): Promise<void> {
    const corrupt = this.layout.sub('corrupt');
    for (const [path, name] of [
      [this.layout.env(id), `${id}.env`],
      [this.layout.mess(id), `${id}.mess`],
    ] as const) {
      try {
        await moveToCorrupt(path, corrupt, name);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw queueError(`cannot move ${id} to corrupt/`, err);
      }
    }
  }

  messagePath(id: QueueId): string {
    return this.layout.mess(id);
  }

  updateRecipients(id: QueueId, recipients: readonly RecipientState[]): Promise<void> {
    return this.rewrite(id, (e) => ({ ...e, recipients: [...recipients] }));
  }

  setHeld(id: QueueId, held: boolean): Promise<void> {
    return this.rewrite(id, (e) => ({ ...e, held }));
  }

  /** Runs the read-modify-write steps of one id one at a time in this process. */
  private serial<T>(id: QueueId, fn: () => Promise<T>): Promise<T> {
    const prev = this.serialById.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.serialById.set(id, tail);
    void tail.then(() => {
      if (this.serialById.get(id) === tail) this.serialById.delete(id);
    });
    return run;
  }

  private rewrite(id: QueueId, change: (e: Envelope) => Envelope): Promise<void> {
    return this.serial(id, async () => {
      const cur = await this.envelope(id);
      if (!cur) throw new QuailError(`message ${id} is not in the queue`, false);
      const upd = this.layout.upd(id, ++this.updCounter);
      const env = this.layout.env(id);
      try {
        await writeSynced(upd, encodeEnvelope(change(cur)), this.owner);
        renameSync(upd, env);
        await this.envSync.sync();
      } catch (err) {
        await unlinkQuiet(upd);
        throw queueError(`cannot update envelope ${id}`, err);
      }
      // removed by another process meanwhile: do not resurrect an envelope without its message
      if ((await exists(this.layout.trash(id))) || !(await exists(this.layout.mess(id)))) {
        await unlinkQuiet(env);
        throw new QuailError(`message ${id} was removed from the queue`, false);
      }
    });
  }

  remove(id: QueueId): Promise<void> {
    return this.serial(id, async () => {
      const trash = this.layout.trash(id);
      try {
        renameSync(this.layout.env(id), trash); // the un-commit point
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw queueError(`cannot remove ${id}`, err);
        if (!(await exists(trash))) return;
      }
      // No fsync of env/ between the rename and the unlinks (qmail syncs nothing at removal either): every order in
      // which a crash can leave these three changes is safe, docs/QUEUE.md "remove" says why.
      // Kept in spare/ as they are (not emptied) for the next inject rather than unlinked (spare.ts): same order, mess/
      // first.
      this.spares.keep(this.layout.mess(id), id, 'mess');
      this.spares.keep(trash, id, 'env');
    });
  }

  watch(listener: WakeListener): () => void {
    return this.waker.watch(listener);
  }

  trigger(what: 'new' | 'flush' = 'new', domain?: string): void {
    void this.waker.send(what, domain).catch(() => 0);
  }

  /**
   * Wakes the watchers of this process only (the scheduler beside this store), without the socket round trip of
   * trigger(): for a process that learnt of a new message another way (the send child, from root's note, which names
   * the message when the SMTP processes queued it: `id`).
   */
  wakeWatchers(what: 'new' | 'flush' = 'new', id?: QueueId): void {
    this.waker.wakeHere(what, undefined, id);
  }

  /** Like trigger, but says how many watching processes took the wake-up. */
  triggerCounted(what: 'new' | 'flush' = 'new', domain?: string): Promise<number> {
    return this.waker.send(what, domain);
  }

  recover(opts: RecoverOptions = {}): Promise<RecoverReport> {
    return recoverQueue(this, opts);
  }

  /**
   * Closes wake-up sockets (watchers) and, once their fsyncs are done, the directories the commits sync; starts the
   * journal's retirement of its segments (`closed()` resolves when it is done; what a process exit cuts short,
   * recovery settles).
   */
  close(): void {
    this.waker.close();
    this.messSync.close();
    this.envSync.close();
    if (this.journal) this.closing = this.journal.close();
  }

  /** Resolves once close() has retired the journal's segments (at once without a journal). */
  closed(): Promise<void> {
    return this.closing;
  }

  /** Directory fsyncs run so far (grouping makes this far smaller than the number of commits). */
  dirSyncs(): number {
    return this.messSync.count + this.envSync.count;
  }

  async messageSize(id: QueueId): Promise<number | undefined> {
    try {
      return (await stat(this.layout.mess(id))).size;
    } catch {
      return undefined;
    }
  }
}

/**
 * Cuts the file to the `size` bytes just written from offset 0, unless it was no longer than that before (`was`, known
 * for a new file and a spare whose name records its length): then nothing lies past them and the call is saved
 * (docs/PERFORMANCE.md, twenty-fourth pass). An unknown length is always cut.
 */
function cutTo(fd: number, size: number, was: number | undefined): void {
  if (was === undefined || was > size) ftruncateSync(fd, size);
}

/** The two files of an inject, written and open: `sync` starts their fdatasyncs; `close` closes them (once). */
interface Unsynced {
  readonly sync: () => Promise<void>[];
  readonly close: () => void;
}

/**
 * Step 1: into the new file `fd`, the Received line then the data, streamed, hashed. Page-cache writes are
 * synchronous (durable.ts says why). `keep`, when given, gets a copy of every byte written while they stay within
 * JOURNAL_MAX_MESSAGE (it is emptied beyond: journal.ts). `beside`, given the size and hash, writes the envelope into `envFd`. Both stay
 * open and unsynced for the caller, whose one wait for the disk covers them and the links (step 5); on a failure
 * they are closed here.
 */
async function writeMessage(
  fd: number,
  /** How long `fd`'s file was before this write (0 new; undefined: not known). */
  was: number | undefined,
  envFd: number,
  header: string,
  data: Readable | Buffer,
  keep: Buffer[] | undefined,
  beside: (written: { size: number; sha256: string }) => void,
): Promise<Unsynced> {
  const hash = createHash('sha256');
  let size = 0;
  let keeping = keep !== undefined;
  // bytes counted and hashed but not written yet: the Received line waits for the data's first bytes (one writev)
  let held: Buffer[] = [];
  const put = (b: Buffer, hold = false): void => {
    hash.update(b);
    size += b.length;
    held.push(b);
    if (!hold) {
      writevAllSync(fd, held);
      held = [];
    }
    if (!keeping || !keep) return;
    if (size > JOURNAL_MAX_MESSAGE) {
      keeping = false;
      keep.length = 0; // too large for a record: its files sync themselves
    } else keep.push(Buffer.from(b)); // a copy: a stream may reuse its chunk's memory
  };
  try {
    if (header) put(Buffer.from(header, 'latin1'), true);
    if (Buffer.isBuffer(data)) put(data);
    else
      for await (const chunk of data as AsyncIterable<unknown>) {
        put(
          Buffer.isBuffer(chunk)
            ? chunk
            : typeof chunk === 'string'
              ? Buffer.from(chunk)
              : Buffer.from(chunk as Uint8Array),
        );
      }
    if (held.length > 0) writevAllSync(fd, held); // no data at all: the Received line alone
    // A spare file still holds a removed message's bytes (spare.ts): whatever lies past what was written goes now,
    // before the sync.
    cutTo(fd, size, was);
    beside({ size, sha256: hash.digest('hex') });
  } catch (err) {
    closeSync(fd);
    closeSync(envFd);
    throw err;
  }
  let open = true;
  return {
    sync: () => [datasync(fd), datasync(envFd)],
    close: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
      closeSync(envFd);
    },
  };
}

export async function writeAll(fh: FileHandle, b: Buffer): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, b.length - off);
    off += bytesWritten;
  }
}
