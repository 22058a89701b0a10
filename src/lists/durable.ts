// Writing a list's own files so that they survive a crash once the program has said "done" (exit 0).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** fsync of a directory: the names created in it (link, rename) are on disk. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates `path` (it must not exist) with `data`, fsyncs it; the caller links or renames it, then syncDir. */
export function writeSynced(path: string, data: Buffer, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A new file made durable: written and fsynced, then its directory. */
export function createDurable(path: string, data: Buffer, mode: number): void {
  writeSynced(path, data, mode);
  syncDir(dirname(path));
}
