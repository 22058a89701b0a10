// Writing a list's own files so that they survive a crash once the program has said "done" (exit 0).
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
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

/**
 * The first `max` bytes of a file, read without blocking (the web admin's pages are answered by the root supervisor,
 * which must go on serving meanwhile; a post may be 35 MiB and only its header is wanted). null: it is gone.
 */
export async function readHead(path: string, max: number): Promise<Buffer | null> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(max);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, max - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got === max) break;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}
