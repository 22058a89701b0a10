// The message file of one transaction: opened once, scanned for 8-bit bytes (RFC 6152) at most once per engine, then sent.
import { isAscii } from 'node:buffer';
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
 * One message file, open for one transaction. `size` comes from fstat of the open file (SIZE, RFC 1870).
 * `eightBit()` scans with node's native isAscii; a message of at most one chunk that it read whole is kept for
 * `body()`, so such a message is read once in all. `close()` always, when done.
 */
export class MessageFile {
  private whole: Buffer | undefined;

  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly key: string,
    private readonly offset: number,
  ) {}

  /**
   * Opens the file; rejects when it cannot be opened or stat'ed (the caller defers: #4.3.0). The message starts
   * `offset` bytes in (src/held sends a Maildir file without the Return-Path line qmail-local put on top).
   */
  static async open(path: string, offset = 0): Promise<MessageFile> {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      const start = Math.min(offset, st.size);
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${start}:${path}`;
      return new MessageFile(fh, st.size - start, key, start);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** True when the file holds any byte >= 0x80 (RFC 6152: declared BODY=8BITMIME); from `cache` when known. */
  async eightBit(cache?: EightBitCache): Promise<boolean> {
    const known = cache?.get(this.key);
    if (known !== undefined) return known;
    const found = await this.scan();
    cache?.set(this.key, found);
    return found;
  }

  private async scan(): Promise<boolean> {
    // One byte more than fstat said: a short read then proves the end of the file was reached.
    const buf = Buffer.allocUnsafe(Math.min(this.size + 1, CHUNK));
    let pos = 0;
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, this.offset + pos);
      if (bytesRead === 0) return false;
      const chunk = buf.subarray(0, bytesRead);
      if (pos === 0 && bytesRead < buf.length) this.whole = chunk; // the whole file, in one read
      if (!isAscii(chunk)) return true;
      pos += bytesRead;
    }
  }

  /** The bytes for DATA, from the start: the scan's buffer when it held the whole file, else streamed. */
  body(): Readable | Buffer {
    if (this.whole !== undefined) return this.whole;
    return this.fh.createReadStream({ start: this.offset, autoClose: false, highWaterMark: CHUNK });
  }

  /** Closes the file (after any read in progress). */
  async close(): Promise<void> {
    await this.fh.close();
  }
}
