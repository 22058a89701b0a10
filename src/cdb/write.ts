// cdb writer: byte-compatible with djb's cdbmake (SEMANTICS.md C.6); atomic install via tmp + fsync + rename.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { cdbHash } from './hash.js';

const HEADER = 2048;
const MAX = 0xffffffff;

/** Builds a whole cdb file in memory. Records keep their insertion order; duplicates are all kept. */
export function buildCdb(records: Iterable<readonly [Uint8Array, Uint8Array]>): Buffer {
  const chunks: Buffer[] = [];
  const entries: Array<{ hash: number; pos: number }> = [];
  let pos = HEADER;
  for (const [key, data] of records) {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(key.length, 0);
    head.writeUInt32LE(data.length, 4);
    chunks.push(head, Buffer.from(key), Buffer.from(data));
    entries.push({ hash: cdbHash(key), pos });
    pos += 8 + key.length + data.length;
    if (pos > MAX) throw new RangeError('cdb: file would exceed 4 GB');
  }
  // Group by table (h mod 256), keeping insertion order inside each table.
  const tables: Array<Array<{ hash: number; pos: number }>> = Array.from({ length: 256 }, () => []);
  for (const e of entries) tables[e.hash & 0xff]?.push(e);
  const header = Buffer.alloc(HEADER);
  for (let t = 0; t < 256; t++) {
    const list = tables[t] ?? [];
    const slots = list.length * 2;
    header.writeUInt32LE(pos, t * 8);
    header.writeUInt32LE(slots, t * 8 + 4);
    if (slots === 0) continue;
    const table = Buffer.alloc(slots * 8);
    const used = new Uint8Array(slots);
    for (const e of list) {
      let i = (e.hash >>> 8) % slots;
      while (used[i]) i = (i + 1) % slots;
      used[i] = 1;
      table.writeUInt32LE(e.hash, i * 8);
      table.writeUInt32LE(e.pos, i * 8 + 4);
    }
    chunks.push(table);
    pos += table.length;
    if (pos > MAX) throw new RangeError('cdb: file would exceed 4 GB');
  }
  return Buffer.concat([header, ...chunks]);
}

/**
 * Writes `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory.
 * Readers see the old file or the new one, never a partial one.
 */
export function writeCdbAtomic(path: string, records: Iterable<readonly [Uint8Array, Uint8Array]>, mode = 0o644): void {
  const bytes = buildCdb(records);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fchmodSync(fd, mode); // the umask must not narrow it: readers run as other uids
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try { fsyncSync(dfd); } finally { closeSync(dfd); }
}
