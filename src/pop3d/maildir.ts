// The Maildir mailbox behind POP3: scan new/ and cur/, sizes as sent, streamed retrieval, deletions, maildirsize.
import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, promises as fsp, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { tempError } from '../core/index.js';
import { recordRemoval } from '../maildir/index.js';
import type { Account, CommitResult, Mailbox, MailboxStore, MessageInfo, OpenResult } from './types.js';
import { toWire, WireSizer } from './wire.js';

interface Entry extends MessageInfo {
  readonly path: string;
  /** Bytes on disk (Maildir++ accounting counts these). */
  readonly diskSize: number;
}

/**
 * How a message file is opened: never through a symbolic link (one in cur/ could point at any file the account may
 * read, a private key, and RETR would send it), and never waiting (a FIFO put in a message's place between LIST and
 * RETR blocked the synchronous open, and with it every session of the POP3 process, until someone wrote into it).
 * O_NONBLOCK changes nothing for a regular file. The scan lists regular files only (lstat: a link is not one).
 */
const OPEN_MESSAGE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** RFC 1939 section 7: a unique-id is 1 to 70 characters in 0x21-0x7E. */
const UIDL_OK = /^[\x21-\x7e]{1,70}$/;

/** The Maildir unique name (the part before ':'); a name POP3 cannot carry is replaced by a stable digest. */
export function uidFor(fileName: string): string {
  const colon = fileName.indexOf(':');
  const base = colon < 0 ? fileName : fileName.slice(0, colon);
  if (UIDL_OK.test(base)) return base;
  return `H${createHash('sha256').update(base, 'utf8').digest('hex').slice(0, 40)}`;
}

/** `,W=<n>` (Dovecot's size with CRLF) or `,S=<n>` (size on disk) in the unique name, if present. */
function sizeField(fileName: string, key: 'W' | 'S'): number | undefined {
  // by hand, not a RegExp made per call: the listing at login asks twice per message (docs/PERFORMANCE.md, POP3)
  const colon = fileName.indexOf(':');
  const end = colon < 0 ? fileName.length : colon;
  const tag = `,${key}=`;
  for (let at = fileName.indexOf(tag); at >= 0 && at < end; at = fileName.indexOf(tag, at + 1)) {
    let i = at + tag.length;
    while (i < end && fileName.charCodeAt(i) >= 0x30 && fileName.charCodeAt(i) <= 0x39) i++;
    if (i > at + tag.length && (i === end || fileName[i] === ',')) return Number(fileName.slice(at + tag.length, i));
  }
  return undefined;
}

const SIZE_CACHE_MAX = 200_000;
/** Entries of kept listings, all mailboxes together; past it the oldest listings are dropped. */
const LISTING_CACHE_MAX = 200_000;
/** A directory changed less than this long ago may change again within its clock's grain unseen: not kept then. */
const SETTLE_MS = 2000;

export interface MaildirStoreOptions {
  /** Recheck sizes on disk instead of trusting a `,W=` field in the name (for tests). */
  readonly ignoreNameSizes?: boolean;
}

/** Messages up to this size are read whole (one read); larger ones are streamed in 64 KB chunks. */
const SMALL = 64 * 1024;
/**
 * Files stat'ed synchronously between two turns of the event loop while listing cur/: a stat of a listed name is a
 * page-cache call, far cheaper than a thread-pool round trip each (docs/PERFORMANCE.md, POP3), and the turns between
 * batches keep other sessions served while a large mailbox is listed.
 */
const STAT_BATCH = 1024;

/**
 * One per server: holds the set of mailboxes in use (one session per mailbox, RFC 1939 section 8 suggests an
 * exclusive lock) and a cache of wire sizes, keyed by inode, size and mtime (a rename new/ → cur/ keeps them).
 */

export class MaildirStore implements MailboxStore {
  private readonly inUse = new Set<string>();
  private readonly sizes = new Map<string, number>();
  /**
   * The last listing of each Maildir's cur/, with cur/'s identity and times when it was read: while they are the
   * same, no name was added, removed or renamed there, so the listing is given again without a stat per message.
   */
  private readonly listings = new Map<string, { readonly id: string; readonly entries: readonly Entry[] }>();
  private listed = 0;
  /** Listings read from disk (for tests). */
  scans = 0;

  constructor(private readonly opts: MaildirStoreOptions = {}) {}

  async open(account: Account): Promise<OpenResult> {
    const key = account.maildir;
    if (this.inUse.has(key)) return { kind: 'in-use' };
    this.inUse.add(key);
    try {
      const entries = await this.scan(account.maildir);
      let released = false;
      const release = (): void => {
        if (!released) this.inUse.delete(key);
        released = true;
      };
      return { kind: 'ok', mailbox: new MaildirMailbox(account.maildir, entries, release) };
    } catch (err) {
      this.inUse.delete(key);
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return { kind: 'temporary', reason: `maildir unavailable (${code})` };
    }
  }

  /** qmail-pop3d's scan: new/ moved to cur/ (info ":2,"), then cur/, oldest first. */
  private async scan(dir: string): Promise<readonly Entry[]> {
    const cur = join(dir, 'cur');
    const newDir = join(dir, 'new');
    await fsp.access(cur, constants.R_OK | constants.W_OK | constants.X_OK);
    for (const name of await fsp.readdir(newDir)) {
      if (name.startsWith('.')) continue;
      const target = name.includes(':') ? name : `${name}:2,`;
      try {
        await fsp.rename(join(newDir, name), join(cur, target));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // taken by another reader: fine
      }
    }
    // cur/ as it is before its names are read: a change after this stat gives it new times
    const dirSt = statSync(cur, { bigint: true });
    const settled = Date.now() - Number(dirSt.mtimeMs) >= SETTLE_MS;
    const id = `${dirSt.dev}:${dirSt.ino}:${dirSt.mtimeNs}:${dirSt.ctimeNs}`;
    const kept = this.listings.get(dir);
    if (kept !== undefined && kept.id === id) return kept.entries;
    this.scans++;
    const found: { name: string; path: string; st: Stats }[] = [];
    const names = (await fsp.readdir(cur)).filter((name) => !name.startsWith('.'));
    for (let i = 0; i < names.length; i += STAT_BATCH) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r));
      for (const name of names.slice(i, i + STAT_BATCH)) {
        const path = join(cur, name);
        let st: Stats | undefined;
        try {
          st = lstatSync(path, { throwIfNoEntry: false });
        } catch {
          st = undefined; // as before: a name that cannot be stat'ed is not listed
        }
        if (st?.isFile()) found.push({ name, path, st });
      }
    }
    found.sort((a, b) => a.st.mtimeMs - b.st.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const out: Entry[] = [];
    for (const f of found) {
      const size = await this.wireSize(f.name, f.path, f.st);
      if (size === undefined) continue; // vanished while scanning
      out.push({
        n: out.length + 1,
        uid: uidFor(f.name),
        size,
        path: f.path,
        diskSize: sizeField(f.name, 'S') ?? f.st.size,
      });
    }
    this.keep(dir, settled ? id : undefined, out);
    return out;
  }

  /**
   * Keeps a listing for the next login (`id` undefined: cur/ had changed too recently when it was looked at; a second
   * change within the same tick of the file system's clock would have left its times as they were). Maildir files are not rewritten in place (a flag
   * change is a rename, a deletion an unlink: both change cur/), so the directory's times stand for its files.
   */
  private keep(dir: string, id: string | undefined, entries: readonly Entry[]): void {
    const old = this.listings.get(dir);
    if (old !== undefined) {
      this.listings.delete(dir);
      this.listed -= old.entries.length;
    }
    if (id === undefined || entries.length > LISTING_CACHE_MAX) return;
    for (const [key, l] of this.listings) {
      if (this.listed + entries.length <= LISTING_CACHE_MAX) break;
      this.listings.delete(key);
      this.listed -= l.entries.length;
    }
    this.listings.set(dir, { id, entries });
    this.listed += entries.length;
  }

  private async wireSize(name: string, path: string, st: Stats): Promise<number | undefined> {
    const named = this.opts.ignoreNameSizes ? undefined : sizeField(name, 'W');
    if (named !== undefined) return named;
    const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    const cached = this.sizes.get(key);
    if (cached !== undefined) return cached;
    const sizer = new WireSizer();
    try {
      const fh = await fsp.open(path, OPEN_MESSAGE);
      for await (const chunk of fh.createReadStream({ highWaterMark: 256 * 1024 })) sizer.add(chunk as Buffer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    if (this.sizes.size >= SIZE_CACHE_MAX) this.sizes.clear();
    this.sizes.set(key, sizer.total());
    return sizer.total();
  }
}

/** The read buffer of readSmall: one per process, as the reads and the conversion after them are synchronous. */
let scratch: Buffer | undefined;

/**
 * The whole file when it is at most SMALL bytes now (whatever its name says), else undefined (streamed instead).
 * One read of SMALL + 1 bytes: a regular file's short read is its end, so no fstat is needed for the size, and the
 * bytes land in a buffer kept for the process (open, read, close: three system calls and no allocation per RETR).
 * The result is a view of that buffer, valid until the next call: the caller converts it at once.
 */
function readSmall(path: string): Buffer | undefined {
  const fd = openSync(path, OPEN_MESSAGE);
  try {
    const buf = (scratch ??= Buffer.allocUnsafe(SMALL + 1));
    const n = readSync(fd, buf, 0, buf.length, 0);
    return n > SMALL ? undefined : buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

class MaildirMailbox implements Mailbox {
  constructor(
    private readonly dir: string,
    private readonly entries: readonly Entry[],
    private readonly release: () => void,
  ) {}

  list(): readonly MessageInfo[] {
    return this.entries;
  }

  /** The message streamed in 64 KiB chunks (the server's way for a message readStored does not give). */
  async retrieve(n: number, bodyLines?: number): Promise<Readable> {
    const e = this.entries[n - 1];
    if (!e) throw tempError(`no message ${n}`);
    const fh = await fsp.open(e.path, OPEN_MESSAGE); // fails here, before "+OK", if the file is gone
    const file = fh.createReadStream({ highWaterMark: 64 * 1024 });
    return Readable.from(toWire(file, bodyLines), { objectMode: false });
  }

  /**
   * A small message (most mail): its bytes read whole with one synchronous page-cache read (readSmall: a view of the
   * process's read buffer), for the session to convert and send with no stream and no thread-pool round trip
   * (docs/PERFORMANCE.md, POP3); undefined when it is larger (retrieve streams it). Fails, before "+OK", if the file
   * is gone.
   */
  readStored(n: number): Buffer | undefined {
    const e = this.entries[n - 1];
    if (!e) throw tempError(`no message ${n}`);
    return e.diskSize <= SMALL ? readSmall(e.path) : undefined;
  }

  async commit(deleted: readonly number[]): Promise<CommitResult> {
    let done = 0;
    let missing = 0;
    let bytes = 0;
    let failure: unknown;
    for (const n of deleted) {
      const e = this.entries[n - 1];
      if (!e) continue;
      try {
        await fsp.unlink(e.path);
        done++;
        bytes += e.diskSize;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') missing++;
        else failure ??= err;
      }
    }
    // Maildir++: `-bytes -count` appended when maildirsize exists (src/maildir; never created here).
    const quotaError = done > 0 ? await recordRemoval(this.dir, bytes, done) : undefined;
    if (failure !== undefined) throw tempError('some deleted messages not removed', failure);
    return { deleted: done, missing, ...(quotaError ? { quotaError } : {}) };
  }

  close(): void {
    this.release();
  }
}
