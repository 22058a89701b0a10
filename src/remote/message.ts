// The message file of one transaction: read once (a small one whole, at open), scanned for 8-bit bytes (RFC 6152) at most once per engine, then sent.
import { isAscii } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

/** Reads of the scan and of DATA: one stream chunk's worth, so a message is never held whole beyond this. */
const CHUNK = 65536;

/**
 * Remembers, per message file, whether it has a byte >= 0x80 (a small LRU, one per RemoteEngine). The
 * scheduler sends the same queued message to several hosts; the scan is done once. The key is the path with
 * the file's identity (device, inode, size, mtime, ctime): queue message files never change after their
 * commit, and a file that is replaced or rewritten gets a new key. A wrong answer would only add or drop the
 * BODY=8BITMIME declaration (qmail never declares it).
 */
export class EightBitCache {
  private readonly seen = new Map<string, boolean>();

  constructor(private readonly max = 512) {}

  get(key: string): boolean | undefined {
    const v = this.seen.get(key);
    if (v !== undefined) {
      this.seen.delete(key); // most recently used last
      this.seen.set(key, v);
    }
    return v;
  }

  set(key: string, eightBit: boolean): void {
    this.seen.delete(key);
    this.seen.set(key, eightBit);
    if (this.seen.size > this.max) {
      const oldest = this.seen.keys().next();
      if (oldest.done !== true) this.seen.delete(oldest.value);
    }
  }

  get size(): number {
    return this.seen.size;
  }
}

/**
 * One message file, for one transaction. `size` comes from fstat of the open file (SIZE, RFC 1870). A message below
 * one chunk (nearly all mail) is read whole when opened, by one open, fstat, read and close without the thread pool
 * (a queue file just written is in the page cache; four trips through the pool cost more than the reads), and sent
 * from that buffer. A larger one is opened as a FileHandle and `eightBit()` scans it chunk by chunk with node's native
 * isAscii, then `body()` streams it. `close()` always, when done.
 */
export class MessageFile {
  private constructor(
    /** The whole message (one below a chunk), or the open file of a larger one. */
    private readonly source: Buffer | FileHandle,
    readonly size: number,
    private readonly key: string,
    private readonly offset: number,
  ) {}

  /**
   * Opens the file; rejects when it cannot be opened, stat'ed or read (the caller defers: #4.3.0). The message starts
   * `offset` bytes in (src/held sends a Maildir file without the Return-Path line qmail-local put on top).
   */
  static async open(path: string, offset = 0): Promise<MessageFile> {
    const fd = openSync(path, 'r');
    let size: number;
    let start: number;
    let key: string;
    try {
      const st = fstatSync(fd);
      start = Math.min(offset, st.size);
      size = st.size - start;
      key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${start}:${path}`;
      if (size < CHUNK) {
        // One byte more than fstat said: a short read proves the end of the file was reached.
        const buf = Buffer.allocUnsafe(size + 1);
        let got = 0;
        for (let n = -1; n !== 0 && got < buf.length; got += n)
          n = readSync(fd, buf, got, buf.length - got, start + got);
        if (got < buf.length) return new MessageFile(buf.subarray(0, got), size, key, start);
      }
    } finally {
      closeSync(fd);
    }
    return new MessageFile(await open(path, 'r'), size, key, start);
  }

  /** True when the file holds any byte >= 0x80 (RFC 6152: declared BODY=8BITMIME); from `cache` when known. */
  async eightBit(cache?: EightBitCache): Promise<boolean> {
    const known = cache?.get(this.key);
    if (known !== undefined) return known;
    const found = Buffer.isBuffer(this.source) ? !isAscii(this.source) : await this.scan(this.source);
    cache?.set(this.key, found);
    return found;
  }

  private async scan(fh: FileHandle): Promise<boolean> {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = 0; ;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset + pos);
      if (bytesRead === 0) return false;
      if (!isAscii(buf.subarray(0, bytesRead))) return true;
      pos += bytesRead;
    }
  }

  /** The bytes for DATA, from the start: the buffer of a message read whole, else streamed. */
  body(): Readable | Buffer {
    if (Buffer.isBuffer(this.source)) return this.source;
    return this.source.createReadStream({ start: this.offset, autoClose: false, highWaterMark: CHUNK });
  }

  /** Closes the file of a large message (after any read in progress). */
  async close(): Promise<void> {
    if (!Buffer.isBuffer(this.source)) await this.source.close();
  }
}
