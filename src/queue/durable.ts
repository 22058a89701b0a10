// Durability helpers: grouped directory fsyncs, durable small-file writes, file-system errors as QuailError.
import {
  closeSync,
  fchown,
  fchownSync,
  fdatasync,
  fsync,
  open,
  openSync,
  statSync,
  unlinkSync,
  writeSync,
  writevSync,
} from 'node:fs';
import { link, rename, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { errText, QuailError } from '../core/index.js';

const EXPLAIN: Readonly<Record<string, string>> = {
  ENOSPC: 'the queue file system is full',
  EDQUOT: 'the queue disk quota is exhausted',
  EACCES: 'permission denied in the queue',
  EPERM: 'operation not permitted in the queue',
  EROFS: 'the queue file system is read-only',
  EIO: 'input/output error in the queue',
  ENOENT: 'a queue directory is missing (run quail init or quail queue recover)',
  ENOTDIR: 'a queue directory is not a directory',
  EMFILE: 'too many open files',
};

export function errCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Is process `pid` running? (EPERM: it is, under another account.) */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/** Wraps a file-system failure as a temporary QuailError with a clear text (qmail-queue: 4.3.0). */
export function queueError(what: string, err: unknown): QuailError {
  if (err instanceof QuailError) return err;
  const code = errCode(err);
  const why = (code && EXPLAIN[code]) ?? errText(err);
  return new QuailError(`${what}: ${why}${code ? ` (${code})` : ''}`, true, '4.3.0', { cause: err });
}

/*
 * Cost model (docs/PERFORMANCE.md): the queue's small metadata calls (open, write of a few KiB into the page cache,
 * link, rename, unlink, stat, close) take a few µs each when made synchronously, and several times that in CPU
 * when sent through libuv's thread pool (two thread hand-offs, futex wake-ups and an event-loop turn per call).
 * They run synchronously here; only the calls that wait for the disk (fsync, fdatasync) stay asynchronous, so the
 * event loop never waits for the disk. The order of the calls, and so the durability contract, is unchanged.
 */
const fsyncFd = promisify(fsync);
const fdatasyncFd = promisify(fdatasync);

/** fdatasync of an open descriptor, off the event loop (the one slow step of a durable write). */
export function datasync(fd: number): Promise<void> {
  return fdatasyncFd(fd);
}

export async function fsyncDir(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes all of `b` at the descriptor's position (synchronously: page-cache writes of a few KiB). */
export function writeAllSync(fd: number, b: Uint8Array): void {
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off);
}

/**
 * Writes all of `parts`, in order, at the descriptor's position with one writev (libuv splits it at IOV_MAX buffers
 * and goes on after a short write): one system call and no joined copy instead of one write per part. It returns
 * short only when a write failed after some bytes went (a full disk): the rest is written part by part here, which
 * throws that error.
 */
export function writevAllSync(fd: number, parts: readonly Uint8Array[]): void {
  let left = writevSync(fd, parts);
  for (const b of parts) {
    if (left >= b.length) {
      left -= b.length;
      continue;
    }
    writeAllSync(fd, left === 0 ? b : b.subarray(left));
    left = 0;
  }
}

/**
 * Group commit for one directory: at most one fsync runs at a time; every request made while one runs is
 * served by the single next fsync (which starts after the request, so it covers the caller's rename).
 * The directory stays open between fsyncs (an open and a close fewer per group, docs/PERFORMANCE.md ninth pass)
 * until `close`; the queue's directories are never replaced while a process has them open.
 */
export class DirSyncer {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private fd: number | undefined;
  private closing = false;
  /** How many fsyncs actually ran (the grouping test reads it). */
  count = 0;
  constructor(readonly dir: string) {}

  /** Lets the directory go, once no fsync runs or waits (a sync after this opens it for that fsync only). */
  close(): void {
    this.closing = true;
    if (!this.running && !this.next) this.release();
  }

  /** Whether the directory is held open now (tests). */
  get isOpen(): boolean {
    return this.fd !== undefined;
  }

  private release(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // the descriptor is gone either way
    }
  }

  private async fsyncOnce(): Promise<void> {
    this.fd ??= openSync(this.dir, 'r');
    await fsyncFd(this.fd);
  }

  sync(): Promise<void> {
    if (this.next) return this.next;
    if (!this.running) return this.start();
    const after = this.running.then(
      () => undefined,
      () => undefined,
    );
    this.next = after.then(() => {
      this.next = undefined;
      return this.start();
    });
    return this.next;
  }

  private start(): Promise<void> {
    this.count++;
    const p = this.fsyncOnce().finally(() => {
      if (this.running === p) this.running = undefined;
      if (this.closing && !this.running && !this.next) this.release();
    });
    this.running = p;
    return p;
  }
}

/** Who owns the queue's files: set when running as root, so files made by root tools stay usable. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** Writes a small file (O_EXCL, 0600) and fdatasyncs it. The caller renames it into place. */
export async function writeSynced(path: string, data: string | Buffer, owner?: Owner): Promise<void> {
  const fd = openSync(path, 'wx', 0o600);
  try {
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    writeAllSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    await fdatasyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

const openAsync = promisify(open);
const fchownAsync = promisify(fchown);

/**
 * Creates new files (O_EXCL, 0600, given to `owner` when set) at once, through the thread pool: making an inode
 * waits for ext4's running journal transaction, and in a process serving many sessions a synchronous wait there
 * stops them all (the SMTP child's profile, docs/PERFORMANCE.md sixth pass: `open` was a third of its wall time).
 * All or none: on a failure the ones made are closed and removed, and the error thrown.
 */
export async function createFiles(paths: readonly string[], owner?: Owner): Promise<number[]> {
  const made = await Promise.allSettled(paths.map((p) => openAsync(p, 'wx', 0o600)));
  const fds = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = made.find((r) => r.status === 'rejected');
  try {
    if (failed) throw failed.reason;
    if (owner) await Promise.all(fds.map((fd) => fchownAsync(fd, owner.uid, owner.gid)));
    return fds;
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    for (const [i, r] of made.entries()) if (r.status === 'fulfilled') await unlinkQuiet(paths[i] ?? '');
    throw err;
  }
}

// async in signature (callers await it, and a failure stays a rejection), synchronous inside (see above)
// eslint-disable-next-line @typescript-eslint/require-await
export async function unlinkQuiet(path: string): Promise<boolean> {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

// eslint-disable-next-line @typescript-eslint/require-await
export async function exists(path: string): Promise<boolean> {
  return statSync(path, { throwIfNoEntry: false }) !== undefined;
}

/** Moves a file into corrupt/ (rare: left asynchronous) under `name` (a `.<ms>` suffix if taken); never overwrites, never deletes. */
export async function moveToCorrupt(path: string, corruptDir: string, name = basename(path)): Promise<string> {
  let target = join(corruptDir, name);
  for (let i = 0; ; i++) {
    try {
      // link + unlink: refuses to overwrite an earlier corrupt file of the same name
      await link(path, target);
      await unlink(path);
      return target;
    } catch (err) {
      const code = errCode(err);
      if (code === 'EEXIST' && i < 5) {
        target = join(corruptDir, `${name}.${Date.now()}${i ? `.${i}` : ''}`);
        continue;
      }
      if (code === 'EPERM' || code === 'EXDEV') {
        await rename(path, target);
        return target;
      }
      throw err;
    }
  }
}
