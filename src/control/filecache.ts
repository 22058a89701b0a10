// Control snapshots for a long-lived process: each file is stat'ed per snapshot and read again only when it changed.
import { lstatSync, readFileSync, statSync, type BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ControlName } from './catalogue.js';
import { Control, ControlReadError } from './control.js';

/**
 * A file whose last change is younger than this when it is read may still change within the same timestamp
 * tick (file times are taken from a coarse clock) without its stat changing: it is read again next time.
 */
const RACY_NS = 2_000_000_000n;

interface Entry {
  /** device, inode, size, mtime and ctime (ns) of the file that was read. */
  readonly id: string;
  readonly text: string;
  /** false while the file was racy when read: then it is read again even if its stat is the same. */
  readonly settled: boolean;
}

const identity = (st: BigIntStats): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

/** Whether a file or directory last changed at least RACY_NS before `now` (so a change now would show in its times). */
const settledAt = (st: BigIntStats, now: bigint): boolean => {
  const changed = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  return changed <= now && now - changed >= RACY_NS;
};

/**
 * One per process (quail start's remote deliveries): `snapshot()` gives a Control that reads as a fresh
 * `new Control(root)` does — every file as it is on disk now, a change seen by the next snapshot — but a file
 * whose device, inode, size, mtime and ctime are unchanged since it was read is not read and decoded again.
 * A missing file is one stat (no exception); a failure (stat or read, other than ENOENT) is ControlReadError
 * as in Control.raw and is never remembered. Writing a file in place or replacing it by rename changes its
 * ctime or inode; a file changed less than 2 s before it was read is read again at each snapshot until it is
 * older, so two writes within one timestamp tick are not missed. (A file system whose clock runs more than
 * 2 s behind this machine's, such as a skewed NFS server, weakens that last guarantee.)
 */
export class ControlFileCache {
  private readonly entries = new Map<string, Entry>();
  private diskReads = 0;
  private fileStats = 0;
  private readonly dir: string;
  /** control/'s identity when `absent` was filled; a different one empties it. */
  private dirId: string | undefined;
  /** Whether control/ had settled (last changed 2 s or more ago) at the last snapshot: only then is `absent` used. */
  private dirSettled = false;
  /** Paths in control/ with no entry at all (not even a dangling symlink) while control/ keeps `dirId`. */
  private readonly absent = new Set<string>();

  /** `now` gives the wall clock in ns (file times are wall-clock times); tests move it. */
  constructor(
    readonly root: string,
    private readonly now: () => bigint = () => BigInt(Date.now()) * 1_000_000n,
  ) {
    this.dir = join(root, 'control');
  }

  /**
   * A Control snapshot over this cache: within it each file is looked at once, as in Control. control/ itself is
   * stat'ed here, once: while it is unchanged and settled, a file found missing before is still missing, because
   * making a name in a directory changes the directory's times. Most control files are missing (their defaults
   * hold), so an SMTP session makes one stat for all of them instead of one each (docs/PERFORMANCE.md, eighth pass).
   */
  snapshot(): Control {
    this.lookAtDir();
    return new CachedControl(this.root, this);
  }

  /** How many times a file was actually read (for tests and the bench). */
  get reads(): number {
    return this.diskReads;
  }

  /** How many times a file in control/ was stat'ed (for tests: a remembered missing file costs none). */
  get stats(): number {
    return this.fileStats;
  }

  private lookAtDir(): void {
    let st: BigIntStats | undefined;
    try {
      st = statSync(this.dir, { bigint: true, throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    const id = st?.isDirectory() === true ? identity(st) : undefined;
    if (id === undefined || id !== this.dirId) this.absent.clear();
    this.dirId = id;
    this.dirSettled = st !== undefined && id !== undefined && settledAt(st, this.now());
  }

  /** `path` is known to have no entry in control/: no stat needed. */
  knownAbsent(path: string): boolean {
    return this.dirSettled && this.absent.has(path);
  }

  /**
   * `path` was just found missing: remembered while control/ is settled and unchanged, only if nothing at all has that
   * name. A dangling symlink is not remembered: its target may appear elsewhere without control/ changing.
   */
  noteMissing(path: string): void {
    if (!this.dirSettled || dirname(path) !== this.dir) return;
    try {
      if (lstatSync(path, { throwIfNoEntry: false }) === undefined) this.absent.add(path);
    } catch {
      // not remembered: looked at again next time
    }
  }

  /** The file's text (latin1), or null when missing; unreadable → ControlReadError. */
  read(path: string): string | null {
    if (this.knownAbsent(path)) return null;
    let st: BigIntStats | undefined;
    try {
      this.fileStats++;
      st = statSync(path, { bigint: true, throwIfNoEntry: false });
    } catch (err) {
      this.entries.delete(path);
      throw new ControlReadError(path, err); // EACCES on control/, ENOTDIR, ELOOP: temporary, as in Control.raw
    }
    if (st === undefined) {
      this.entries.delete(path);
      this.noteMissing(path);
      return null;
    }
    const id = identity(st);
    const known = this.entries.get(path);
    if (known !== undefined && known.settled && known.id === id) return known.text;
    this.entries.delete(path);
    let text: string;
    try {
      this.diskReads++;
      text = readFileSync(path, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // removed since the stat
      throw new ControlReadError(path, err);
    }
    // Only regular files are kept (a FIFO or device is read every time, as Control does). The stat taken
    // before the read is stored: if the file changed in between, the next stat differs and it is read again.
    if (st.isFile()) this.entries.set(path, { id, text, settled: settledAt(st, this.now()) });
    return text;
  }
}

/** A Control whose raw() goes through a ControlFileCache; like Control, it keeps what it read for its lifetime. */
class CachedControl extends Control {
  private readonly seen = new Map<ControlName, string | null>();

  constructor(
    root: string,
    private readonly files: ControlFileCache,
  ) {
    super(root);
  }

  override raw(name: ControlName): string | null {
    if (this.seen.has(name)) return this.seen.get(name) ?? null;
    const text = this.files.read(this.path(name));
    this.seen.set(name, text);
    return text;
  }

  /** As Control.open (a descriptor of the file as it is now), but a file remembered missing costs no stat. */
  override open(name: ControlName): number | null {
    const path = this.path(name);
    if (this.files.knownAbsent(path)) return null;
    const fd = super.open(name);
    if (fd === null) this.files.noteMissing(path);
    return fd;
  }
}
