// cdb writer: byte-compatible with djb's cdbmake (docs/QMAIL.md C.6); atomic install via tmp + fsync + rename.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { cdbHash } from './hash.js';

const HEADER = 2048;
const MAX = 0xffffffff;

/** A key or a value: bytes, or a Latin-1 string (one byte per char, the low 8 bits, as Buffer.from(s, 'latin1')). */
export type CdbBytes = Uint8Array | string;

/** Copies `src` into `out` at `off` (a string's Latin-1 encoding is exactly src.length bytes). */
function put(out: Buffer, off: number, src: CdbBytes): void {
  if (typeof src === 'string') out.write(src, off, src.length, 'latin1');
  else out.set(src, off);
}

/**
 * Builds a whole cdb file in memory. Records keep their insertion order; duplicates are all kept.
 * The size is known before anything is written (8 + key + data per record, two 8-byte slots per record), so
 * the file is written into one buffer: no allocation per record. Slots are laid out as cdbmake's
 * cdb_make_finish does: per table (hash mod 256), in insertion order, each at (hash >> 8) mod slots or the next
 * free one after it.
 */
export function buildCdb(records: Iterable<readonly [CdbBytes, CdbBytes]>): Buffer {
  const list = Array.isArray(records) ? (records as ReadonlyArray<readonly [CdbBytes, CdbBytes]>) : [...records];
  const n = list.length;
  let tables = HEADER;
  for (const [key, data] of list) tables += 8 + key.length + data.length;
  const end = tables + n * 16;
  if (end > MAX) throw new RangeError('cdb: file would exceed 4 GB');
  const out = Buffer.allocUnsafe(end);
  out.fill(0, tables); // an empty slot is all zeros (position 0 marks it free)

  const hashes = new Uint32Array(n);
  const positions = new Uint32Array(n);
  const count = new Uint32Array(256);
  let pos = HEADER;
  for (let r = 0; r < n; r++) {
    const [key, data] = list[r] ?? ['', ''];
    out.writeUInt32LE(key.length, pos);
    out.writeUInt32LE(data.length, pos + 4);
    put(out, pos + 8, key);
    put(out, pos + 8 + key.length, data);
    const h = cdbHash(out, pos + 8, pos + 8 + key.length);
    hashes[r] = h;
    positions[r] = pos;
    count[h & 0xff] = (count[h & 0xff] ?? 0) + 1;
    pos += 8 + key.length + data.length;
  }

  // Records grouped by table, insertion order kept inside each (a counting sort).
  const next = new Uint32Array(256);
  for (let t = 1; t < 256; t++) next[t] = (next[t - 1] ?? 0) + (count[t - 1] ?? 0);
  const order = new Uint32Array(n);
  for (let r = 0; r < n; r++) {
    const t = (hashes[r] ?? 0) & 0xff;
    order[next[t] ?? 0] = r;
    next[t] = (next[t] ?? 0) + 1;
  }

  let tpos = tables;
  let o = 0;
  for (let t = 0; t < 256; t++) {
    const c = count[t] ?? 0;
    const slots = c * 2;
    out.writeUInt32LE(tpos, t * 8);
    out.writeUInt32LE(slots, t * 8 + 4);
    for (let k = 0; k < c; k++) {
      const r = order[o++] ?? 0;
      const h = hashes[r] ?? 0;
      let i = (h >>> 8) % slots;
      while (out.readUInt32LE(tpos + i * 8 + 4) !== 0) i = i + 1 === slots ? 0 : i + 1;
      out.writeUInt32LE(h, tpos + i * 8);
      out.writeUInt32LE(positions[r] ?? 0, tpos + i * 8 + 4);
    }
    tpos += slots * 8;
  }
  return out;
}

/**
 * Writes `path` atomically: `<path>.tmp`, fsync, rename, fsync of the directory.
 * Readers see the old file or the new one, never a partial one.
 */
export function writeCdbAtomic(path: string, records: Iterable<readonly [CdbBytes, CdbBytes]>, mode = 0o644): void {
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
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
