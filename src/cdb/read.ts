// cdb reader: lookups (all values or the first) and record iteration over a file held in memory, and lookups
// through an open file descriptor with positional reads (qmail's cdb_seek: header, slot, record; no whole read).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
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

/** `len` bytes of the file at `pos`; past the end is a CdbFormatError. */
type At = (pos: number, len: number) => Buffer;

/**
 * The lookup walk (cdb_find): the key's table from the header, its slots from (hash >> 8) mod slots on, and for each
 * slot with the key's hash the record, compared byte for byte. Calls `hit(pos, klen, dlen)` per matching record
 * until it returns false. One walk for both readers: `header(off)` reads the header's words, `at` the rest.
 */
function walk(
  key: Uint8Array,
  header: (off: number) => number,
  at: At,
  hit: (pos: number, klen: number, dlen: number) => boolean,
): void {
  const h = cdbHash(key);
  const tpos = header((h & 0xff) * 8);
  const slots = header((h & 0xff) * 8 + 4);
  if (slots === 0) return;
  const k = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  let i = (h >>> 8) % slots;
  for (let n = 0; n < slots; n++) {
    const slot = at(tpos + i * 8, 8);
    const rpos = slot.readUInt32LE(4);
    if (rpos === 0) return;
    if (slot.readUInt32LE(0) === h) {
      const rec = at(rpos, 8);
      const klen = rec.readUInt32LE(0);
      const dlen = rec.readUInt32LE(4);
      if (klen === k.length && at(rpos + 8, klen).equals(k) && !hit(rpos, klen, dlen)) return;
    }
    i = (i + 1) % slots;
  }
}

/** Every value stored under `key`, in file order (empty when none). */
export function cdbGetAll(buf: Buffer, key: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  const at: At = (pos, len) => slice(buf, pos, len);
  walk(
    key,
    (off) => u32(buf, off),
    at,
    (pos, klen, dlen) => {
      out.push(at(pos + 8 + klen, dlen));
      return true;
    },
  );
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

/** The key as bytes: strings are Latin-1, one byte per char. */
const keyBytes = (key: Uint8Array | string): Buffer =>
  typeof key === 'string' ? Buffer.from(key, 'latin1') : Buffer.from(key);

/**
 * A cdb file read through an open file descriptor, as qmail-smtpd reads morercpthosts.cdb: the 2048-byte header
 * once, then for each lookup the hash slots and the record, each with a positional read. Nothing else of the
 * file is read, so the cost of a lookup does not grow with the file. The descriptor keeps the file that was
 * opened: a newer file installed by rename (writeCdbAtomic) is seen only by a new reader.
 * Damage (a read past the end of the file) is a CdbFormatError, as with the in-memory functions; fs errors
 * (EIO, EISDIR) are thrown as they come.
 */
export class CdbReader {
  private fd: number | null;

  private constructor(
    fd: number,
    private readonly header: Buffer,
    private readonly size: number,
  ) {
    this.fd = fd;
  }

  /** Takes the descriptor over: close() closes it, and so does a failure here (short header, read error). */
  static fromFd(fd: number): CdbReader {
    try {
      const size = fstatSync(fd).size;
      const header = Buffer.alloc(HEADER);
      if (readFull(fd, header, 0, HEADER, 0) < HEADER) throw new CdbFormatError('file shorter than its header');
      return new CdbReader(fd, header, size);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Opens `path` read-only; throws the fs error (ENOENT etc.) for the caller to classify. */
  static open(path: string): CdbReader {
    return CdbReader.fromFd(openSync(path, 'r'));
  }

  /** Every value stored under `key`, in file order (empty when none). */
  getAll(key: Uint8Array | string): Buffer[] {
    const out: Buffer[] = [];
    this.find(keyBytes(key), (pos, klen, dlen) => {
      out.push(this.read(pos + 8 + klen, dlen));
      return true;
    });
    return out;
  }

  /** The first value stored under `key`, or undefined. */
  get(key: Uint8Array | string): Buffer | undefined {
    let found: Buffer | undefined;
    this.find(keyBytes(key), (pos, klen, dlen) => {
      found = this.read(pos + 8 + klen, dlen);
      return false;
    });
    return found;
  }

  /** Whether `key` has a record (its value is not read). */
  has(key: Uint8Array | string): boolean {
    let found = false;
    this.find(keyBytes(key), () => {
      found = true;
      return false;
    });
    return found;
  }

  /** Closes the descriptor; later lookups throw. Closing twice is harmless. */
  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }

  /** The shared walk over this file: header words from the copy read at open, the rest by positional reads. */
  private find(k: Buffer, hit: (pos: number, klen: number, dlen: number) => boolean): void {
    walk(
      k,
      (off) => this.header.readUInt32LE(off),
      (pos, len) => this.read(pos, len),
      hit,
    );
  }

  /** `len` bytes at `pos`; past the end of the file is damage. */
  private read(pos: number, len: number): Buffer {
    if (pos + len > this.size) throw new CdbFormatError('truncated file');
    const buf = Buffer.alloc(len);
    this.fill(buf, pos, len);
    return buf;
  }

  private fill(buf: Buffer, pos: number, len: number): void {
    if (this.fd === null) throw new Error('cdb: lookup on a closed reader');
    if (readFull(this.fd, buf, 0, len, pos) < len) throw new CdbFormatError('truncated file');
  }
}

/** Reads until `len` bytes are in or the file ends; returns how many were read. */
function readFull(fd: number, buf: Buffer, off: number, len: number, pos: number): number {
  let got = 0;
  while (got < len) {
    const r = readSync(fd, buf, off + got, len - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}
