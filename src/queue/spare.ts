// Spare files: the files of removed messages, kept for the next inject so the queue does not make and free two
// inodes per message (docs/PERFORMANCE.md "Seventh pass"), nor free and allocate their blocks ("Ninth pass");
// docs/QUEUE.md "Spare files".
import { constants, openSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errCode, unlinkQuiet } from './durable.js';

/** At most this many spares are kept; a removal beyond them unlinks as before. */
export const MAX_SPARES = 256;
/** With spare/ found empty, the next look is this much later (no readdir per message when there are none). */
const LOOK_AGAIN_MS = 100;
/** The count of spare/ is read again after this many keeps (other processes take spares meanwhile). */
const RECOUNT_EVERY = 64;

/**
 * spare/ of one queue. Every name in it is a file of the queue's account that no queue state refers to, still holding
 * the bytes of the removed message it was (0600, in the queue's own directories, as the message was): it is garbage
 * to recovery, and any process may take it (rename is atomic: the one that loses the race sees ENOENT). It is not
 * emptied: the inject that takes it writes over its blocks and cuts it to what it wrote (store.ts writeMessage), so
 * no block is freed at removal and allocated again at the next inject.
 */
export class SpareFiles {
  private names: string[] = [];
  private nextLook = 0;
  private count: number | undefined;
  private sinceCount = 0;

  constructor(
    readonly dir: string,
    /** Real time, never the queue's clock (a test's clock that moves on each call would move births). */
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * A removed message's file (its id no longer in env/): moved to spare/ as `<id>.<size>.<kind>` (so the taker knows
   * its length without a call of its own: take's `size`), or unlinked when enough are kept, or when it has another name
   * elsewhere (never reuse a file that something else still shows).
   */
  keep(path: string, id: string, kind: 'mess' | 'env'): void {
    if (this.count === undefined || ++this.sinceCount >= RECOUNT_EVERY) this.recount();
    try {
      if ((this.count ?? MAX_SPARES) >= MAX_SPARES) throw new Error('unlink it');
      const st = statSync(path);
      if (st.nlink !== 1) throw new Error('unlink it');
      const name = `${id}.${st.size}.${kind}`;
      renameSync(path, join(this.dir, name));
      this.count = (this.count ?? 0) + 1;
      this.names.push(name); // this process's next inject may take it without a look at the directory
    } catch {
      void unlinkQuiet(path);
    }
  }

  /**
   * Takes a spare into `path` and opens it for writing at offset 0, not emptied: the caller writes over it and must cut
   * it to the length it wrote unless it wrote at least `size` bytes (the file's length when it was kept; undefined for
   * a name without it, kept by an older quail: then always cut). Undefined when none could be taken (the caller makes
   * a new file). `path` is a name in tmp/, or the message's own name in mess/ once the inject's envelope exists in tmp/
   * (store.ts injectFiles).
   */
  take(path: string): { readonly fd: number; readonly size: number | undefined } | undefined {
    for (;;) {
      const name = this.next();
      if (name === undefined) return undefined;
      try {
        renameSync(join(this.dir, name), path);
      } catch (err) {
        if (errCode(err) === 'ENOENT') continue; // another process took it
        return undefined;
      }
      try {
        // no O_TRUNC (it would free the blocks the write is about to need). The rename set the file's ctime to now,
        // which recovery reads as a tmp/ file's age (its mtime is the old message's until the first write).
        return { fd: openSync(path, constants.O_WRONLY), size: sizeInName(name) };
      } catch {
        void unlinkQuiet(path);
        return undefined;
      }
    }
  }

  private next(): string | undefined {
    if (this.names.length === 0) {
      const now = this.clock();
      if (now < this.nextLook) return undefined;
      try {
        this.names = readdirSync(this.dir);
      } catch {
        this.names = [];
      }
      this.count = this.names.length;
      if (this.names.length === 0) this.nextLook = now + LOOK_AGAIN_MS;
    }
    return this.names.pop();
  }

  private recount(): void {
    this.sinceCount = 0;
    try {
      this.count = readdirSync(this.dir).length;
    } catch {
      this.count = MAX_SPARES;
    }
  }
}

/** The length a spare's name records (`<id>.<size>.<kind>`), or undefined when it records none. */
function sizeInName(name: string): number | undefined {
  const parts = name.split('.');
  const size = parts.length === 3 ? parts[1] : undefined;
  return size !== undefined && /^\d{1,15}$/.test(size) ? Number(size) : undefined;
}
