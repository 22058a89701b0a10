// cdb reader: lookups (all values or the first) and record iteration over a file held in memory.
import { readFileSync } from 'node:fs';
import { cdbHash } from './hash.js';

const HEADER = 2048;

/** A damaged cdb file: reading it is a temporary failure for the caller. */
export class CdbFormatError extends Error {
  constructor(message: string) {
    super(`cdb: ${message}`);
    this.name = 'CdbFormatError';
  }
}

function u32(buf: Buffer, off: number): number {
  if (off < 0 || off + 4 > buf.length) throw new CdbFormatError('truncated file');
  return buf.readUInt32LE(off);
}

function slice(buf: Buffer, off: number, len: number): Buffer {
  if (off + len > buf.length) throw new CdbFormatError('truncated file');
  return buf.subarray(off, off + len);
}

/** Every value stored under `key`, in file order (empty when none). */
export function cdbGetAll(buf: Buffer, key: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  const h = cdbHash(key);
  const tpos = u32(buf, (h & 0xff) * 8);
  const slots = u32(buf, (h & 0xff) * 8 + 4);
  if (slots === 0) return out;
  const k = Buffer.from(key);
  let i = (h >>> 8) % slots;
  for (let n = 0; n < slots; n++) {
    const sh = u32(buf, tpos + i * 8);
    const rpos = u32(buf, tpos + i * 8 + 4);
    if (rpos === 0) break;
    if (sh === h) {
      const klen = u32(buf, rpos);
      const dlen = u32(buf, rpos + 4);
      if (klen === k.length && slice(buf, rpos + 8, klen).equals(k)) out.push(slice(buf, rpos + 8 + klen, dlen));
    }
    i = (i + 1) % slots;
  }
  return out;
}

/** The first value stored under `key`, or undefined. */
export function cdbGet(buf: Buffer, key: Uint8Array): Buffer | undefined {
  return cdbGetAll(buf, key)[0];
}

/** All records in file (insertion) order. */
export function* cdbEntries(buf: Buffer): Generator<[Buffer, Buffer]> {
  if (buf.length < HEADER) throw new CdbFormatError('file shorter than its header');
  const end = u32(buf, 0); // table 0 starts right after the records
  let pos = HEADER;
  while (pos < end) {
    const klen = u32(buf, pos);
    const dlen = u32(buf, pos + 4);
    const key = slice(buf, pos + 8, klen);
    const data = slice(buf, pos + 8 + klen, dlen);
    yield [key, data];
    pos += 8 + klen + dlen;
  }
}

/** A cdb file read once into memory (users/cdb and morercpthosts.cdb are small). */
export class CdbFile {
  private constructor(readonly path: string, readonly bytes: Buffer) {}

  /** Reads the file; throws the fs error (ENOENT etc.) for the caller to classify. */
  static open(path: string): CdbFile {
    const bytes = readFileSync(path);
    if (bytes.length < HEADER) throw new CdbFormatError(`${path}: file shorter than its header`);
    return new CdbFile(path, bytes);
  }

  get(key: Uint8Array | string): Buffer | undefined {
    return cdbGet(this.bytes, typeof key === 'string' ? Buffer.from(key, 'latin1') : key);
  }

  getAll(key: Uint8Array | string): Buffer[] {
    return cdbGetAll(this.bytes, typeof key === 'string' ? Buffer.from(key, 'latin1') : key);
  }

  has(key: Uint8Array | string): boolean {
    return this.get(key) !== undefined;
  }

  entries(): Generator<[Buffer, Buffer]> {
    return cdbEntries(this.bytes);
  }
}
