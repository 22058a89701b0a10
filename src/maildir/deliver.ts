// Maildir delivery: tmp/<unique> (O_EXCL, 0600), prefix + message, fsync, link to new/, unlink tmp.
import {
  accessSync,
  closeSync,
  constants,
  fsync,
  linkSync,
  openSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { promisify } from 'node:util';
import type { UniqueNamer } from './unique.js';

/*
 * Cost model (docs/PERFORMANCE.md): open, read and write of a few KiB through the page cache, link, unlink and
 * stat run synchronously (a few µs each, where a trip through libuv's thread pool costs several times that in
 * CPU); only the fsyncs, which wait for the disk, run off the event loop. The order of the steps is unchanged.
 */
const fsyncFd = promisify(fsync);

export type MaildirResult =
  | { readonly kind: 'ok'; readonly name: string }
  /** The directory cannot be entered (qmail: `Unable to chdir to maildir.`). */
  | { readonly kind: 'nochdir'; readonly error: unknown }
  /** Reading the message failed. */
  | { readonly kind: 'read-error'; readonly error: unknown }
  /** Anything else (no tmp/, disk full, link failed...). */
  | { readonly kind: 'error'; readonly error: unknown };

const CHUNK = 65536;
const MAX_TRIES = 5;
/** One read buffer per process: the copy below is synchronous, so it is never shared by two deliveries at once. */
let copyBuf: Buffer | undefined;

function writeAll(fd: number, b: Uint8Array, len: number): void {
  for (let off = 0; off < len;) off += writeSync(fd, b, off, len - off);
}

/** A failed copy: which side failed, with the system's error (ENOSPC, EDQUOT... for the log: a full disk says so). */
type CopyFailure = { readonly kind: 'read-error' | 'error'; readonly error: unknown };

/** Copies the whole of `src` (from offset 0) after `prefix` into `dst`; says which side failed and why. */
function copyInto(dst: number, prefix: Buffer, messagePath: string): CopyFailure | null {
  let src: number;
  try {
    src = openSync(messagePath, 'r');
  } catch (error) {
    return { kind: 'read-error', error };
  }
  try {
    if (prefix.length > 0) writeAll(dst, prefix, prefix.length);
    const buf = (copyBuf ??= Buffer.allocUnsafe(CHUNK));
    let pos = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(src, buf, 0, CHUNK, pos);
      } catch (error) {
        return { kind: 'read-error', error };
      }
      if (n === 0) return null;
      pos += n;
      writeAll(dst, buf, n);
    }
  } catch (error) {
    return { kind: 'error', error };
  } finally {
    closeSync(src);
  }
}

/** Writes `prefix` + `data` into `dst` in one write (they are small: the message was read whole in one read). */
function writeWhole(dst: number, prefix: Buffer, data: Buffer): CopyFailure | null {
  try {
    const b = prefix.length === 0 ? data : Buffer.concat([prefix, data]);
    writeAll(dst, b, b.length);
    return null;
  } catch (error) {
    return { kind: 'error', error };
  }
}

/**
 * Delivers `prefix` + the message into the Maildir `dir` (absolute): `message` is the message file's path, or its
 * bytes when the caller has read it whole already (src/local/run.ts). The file is complete and fsynced in tmp/ before
 * it appears in new/, so a reader never sees a partial message (maildir(5)).
 */
export async function deliverToMaildir(
  dir: string,
  prefix: Buffer,
  message: string | Buffer,
  namer: UniqueNamer,
): Promise<MaildirResult> {
  let fd: number | undefined;
  let name = '';
  for (let tries = 0; ; tries++) {
    name = namer.next();
    try {
      fd = openSync(`${dir}/tmp/${name}`, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      break;
    } catch (error) {
      // Only now is the Maildir itself looked at, to say which of qmail's two failures this is (cannot chdir to it,
      // or cannot make the file): two fewer path walks per delivery on the usual path (docs/PERFORMANCE.md).
      if (tries === 0) {
        const noChdir = unusableDir(dir);
        if (noChdir !== undefined) return noChdir;
      }
      if ((error as { code?: string }).code !== 'EEXIST' || tries >= MAX_TRIES) return { kind: 'error', error };
    }
  }
  const tmp = `${dir}/tmp/${name}`;
  const removeTmp = (): void => {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone, or the directory went away: nothing more to undo
    }
  };
  const closeQuiet = (): void => {
    try {
      closeSync(fd);
    } catch {
      // the descriptor is released either way
    }
  };
  try {
    const failed = typeof message === 'string' ? copyInto(fd, prefix, message) : writeWhole(fd, prefix, message);
    if (failed !== null) {
      closeQuiet();
      removeTmp();
      return failed;
    }
    await fsyncFd(fd);
    closeSync(fd);
  } catch (error) {
    closeQuiet();
    removeTmp();
    return { kind: 'error', error };
  }
  try {
    linkSync(tmp, `${dir}/new/${name}`);
  } catch (error) {
    removeTmp();
    return { kind: 'error', error };
  }
  removeTmp();
  await syncDir(`${dir}/new`);
  return { kind: 'ok', name };
}

/** `nochdir` when `dir` is not a directory quail may enter (qmail-local's chdir); undefined when it is. */
function unusableDir(dir: string): MaildirResult | undefined {
  try {
    const st = statSync(dir);
    if (!st.isDirectory())
      return { kind: 'nochdir', error: Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }) };
    accessSync(dir, constants.X_OK);
    return undefined;
  } catch (error) {
    return { kind: 'nochdir', error };
  }
}

/** fsync the directory so the new link survives a crash (best effort: some filesystems refuse). */
async function syncDir(dir: string): Promise<void> {
  try {
    const d = openSync(dir, 'r');
    try {
      await fsyncFd(d);
    } finally {
      closeSync(d);
    }
  } catch {
    // not fatal: qmail does not do it at all
  }
}
