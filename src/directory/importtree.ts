// Reading a vpopmail tree that may be hostile (a customer's, another machine's): nothing outside the domain's
// directory is read, no symlink is copied into a mailbox, no FIFO or device is opened, no file is read whole past a cap.
import {
  closeSync,
  constants,
  copyFileSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  realpathSync,
  utimesSync,
} from 'node:fs';
import { join, sep } from 'node:path';

/** vpasswd of a big domain (100,000 mailboxes of 100 bytes is 10 MB); .qmail-* and limits files are a few lines. */
export const VPASSWD_MAX = 64 * 1024 * 1024;
export const SMALL_FILE_MAX = 1024 * 1024;

/** `p` itself (symlinks followed) when it lies inside `base`, else why not. Missing: undefined. */
export function inside(base: string, p: string): { path: string } | { why: string } | undefined {
  let real: string;
  let top: string;
  try {
    real = realpathSync(p);
    top = realpathSync(base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { why: (err as Error).message };
  }
  if (real !== top && !real.startsWith(top + sep)) return { why: `it leads outside ${base} (to ${real})` };
  return { path: real };
}

/**
 * A file of the domain's directory as text: followed only to a regular file inside `base` (a vpopmail `.qmail-x`
 * may be a symlink to its neighbour), at most `max` bytes. Missing: undefined; otherwise a string says why not.
 */
export function readTreeFile(base: string, p: string, max: number): { text: string } | { why: string } | undefined {
  const at = inside(base, p);
  if (at === undefined || 'why' in at) return at;
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer forever.
    fd = openSync(at.path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return { why: (err as Error).message };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { why: 'not a regular file' };
    if (st.size > max) return { why: `${st.size} bytes, more than the ${max} an import reads` };
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { text: buf.subarray(0, got).toString('latin1') };
  } catch (err) {
    return { why: (err as Error).message };
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies the Maildir `from` to `to`: directories and regular files only, timestamps kept, nothing overwritten.
 * A symlink (it could name another mailbox's mail on this host) or a special file is left out; returns what was
 * left out and why, as paths relative to `from`.
 */
export function copyMaildir(from: string, to: string): Array<{ file: string; why: string }> {
  const left: Array<{ file: string; why: string }> = [];
  const walk = (rel: string): void => {
    const src = join(from, rel);
    const dst = join(to, rel);
    const st = lstatSync(src);
    if (st.isSymbolicLink()) left.push({ file: rel, why: 'a symlink: not copied' });
    else if (st.isDirectory()) {
      mkdirSync(dst, { recursive: true, mode: 0o700 });
      for (const name of readdirSync(src).sort()) walk(join(rel, name));
      utimesSync(dst, st.atime, st.mtime);
    } else if (st.isFile()) {
      copyFileSync(src, dst, constants.COPYFILE_EXCL);
      utimesSync(dst, st.atime, st.mtime);
    } else left.push({ file: rel, why: 'not a regular file: not copied' });
  };
  walk('');
  return left;
}
