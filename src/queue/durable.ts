// Durability helpers: grouped directory fsyncs, durable small-file writes, file-system errors as QuailError.
import { open, rename, unlink, link, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
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

/** Wraps a file-system failure as a temporary QuailError with a clear text (qmail-queue: 4.3.0). */
export function queueError(what: string, err: unknown): QuailError {
  if (err instanceof QuailError) return err;
  const code = errCode(err);
  const why = (code && EXPLAIN[code]) ?? errText(err);
  return new QuailError(`${what}: ${why}${code ? ` (${code})` : ''}`, true, '4.3.0', { cause: err });
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Group commit for one directory: at most one fsync runs at a time; every request made while one runs is
 * served by the single next fsync (which starts after the request, so it covers the caller's rename).
 */
export class DirSyncer {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  /** How many fsyncs actually ran (the grouping test reads it). */
  count = 0;
  constructor(readonly dir: string) {}

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
    const p = fsyncDir(this.dir).finally(() => {
      if (this.running === p) this.running = undefined;
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
  const fh = await open(path, 'wx', 0o600);
  try {
    if (owner) await fh.chown(owner.uid, owner.gid);
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

export async function unlinkQuiet(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch {
    return false;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Moves a file into corrupt/ under `name` (a `.<ms>` suffix if taken); never overwrites, never deletes. */
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
