// The queue journal (docs/QUEUE.md, "Group commit"): many injects made durable by one fsync of a shared file.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fchownSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { QueueId } from './types.js';
import { type Layout, isQueueId } from './layout.js';
import {
  DirSyncer,
  type Owner,
  datasync,
  errCode,
  exists,
  fsyncDir,
  moveToCorrupt,
  pidAlive,
  queueError,
  unlinkQuiet,
  writevAllSync,
  writeSynced,
} from './durable.js';
import { decodeEnvelope } from './envelope.js';

/*
 * Why a journal: each inject used to fdatasync its two files and fsync the two directories, waits for the disk on
 * every message and, on a VM, a block written per file (docs/PERFORMANCE.md, fifteenth and sixteenth passes). Here
 * every inject of a process appends one record (its envelope and its message bytes) to the process's current segment,
 * and one fsync of the segment covers every record appended before it started: the DirSyncer's grouping, applied to a
 * file. The files in mess/ and env/ are written and renamed into place as before; neither their contents nor their
 * directory entries are synced before the 250. So after a power cut recovery finds every acknowledged message intact
 * in mess/ and env/, damaged there, or missing from them, with its record intact here, and rewrites it from the
 * record. A segment is retired when its time is up: the files of its messages still queued are synced, then mess/
 * and env/ (which makes their entries and the removals since durable), and the segment is removed.
 *
 * A missing entry is told from a removal by the boot: a segment's name carries the boot id of the system that wrote
 * it. Within one boot nothing written is lost (a killed process leaves the page cache whole), so an id missing from
 * env/ was removed and its record is not used. Only a segment from an earlier boot, whose writer may have been cut off
 * by a power failure, restores its records' missing ids (a message removed shortly before the cut may so come back: a
 * duplicate, never a loss). Where the boot id cannot be read, the entries are synced before the 250 as before.
 */

/** Messages larger than this skip the journal (their own two fdatasyncs, as before): a record is held in memory. */
export const JOURNAL_MAX_MESSAGE = 256 * 1024;

export interface JournalOptions {
  /** A segment takes no new records after this long (ms; default 1000) or this many bytes (default 4 MiB). */
  readonly rotateMs?: number;
  readonly rotateBytes?: number;
  /** A segment no longer written is retired this long after (ms; default 2000): most of its messages are gone. */
  readonly retireMs?: number;
  /**
   * Do the records stand for the directory entries too (default: yes, where the boot id can be read)? No: the store
   * syncs mess/ and env/ before each 250, and the segment's name carries no boot id.
   */
  readonly entries?: boolean;
  /**
   * The program that makes syncfs(2) for a backlog's retirement (default coreutils' `sync`, looked for in /usr/bin and
   * /bin). Where it cannot run, each queued message's files are synced instead (tests name one that is missing).
   */
  readonly syncProgram?: string;
}

/** What the journal needs of its queue. */
export interface JournalHost {
  readonly layout: Layout;
  readonly owner?: Owner | undefined;
  /** The queue's grouped fsyncs of mess/ and env/: a retirement's shares one with an inject's that runs at once. */
  readonly messSync: DirSyncer;
  readonly envSync: DirSyncer;
}

interface Segment {
  readonly path: string;
  readonly fd: number;
  /** The grouped fsync (DirSyncer opens the file itself: a sync covers the inode, whichever descriptor). */
  readonly syncer: DirSyncer;
  /** The segment's own name in journal/, durable (one directory fsync per segment). */
  readonly made: Promise<void>;
  readonly ids: QueueId[];
  bytes: number;
  open: boolean;
}

/** This process's start time (field 22 of /proc/PID/stat), so a reused pid is not taken for a segment's writer. */
export function startTime(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch {
    return '0';
  }
}

/** This boot's id (Linux: 32 hex digits), or '' where it cannot be read. */
export function bootId(): string {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim().replaceAll('-', '').toLowerCase();
    return /^[0-9a-f]{32}$/.test(id) ? id : '';
  } catch {
    return '';
  }
}

/**
 * `<pid>.<start time>.<n>.<boot id>.jnl`: a segment whose directory entries were not synced before its 250s (this
 * boot's id in its name). Without the boot id (`<pid>.<start time>.<n>.jnl`, quail before session 19, or a system
 * without a boot id) the entries were synced: recovery never restores a missing one.
 */
const SEGMENT_RE = /^(\d{1,10})\.(\d{1,20})\.(\d{1,12})(?:\.([0-9a-f]{32}))?\.jnl$/;

/** What a segment's name says: its writer (pid and start time) and the boot it was written in ('' before session 19). */
interface SegmentName {
  readonly pid: number;
  readonly start: string;
  readonly boot: string;
}

function parseSegment(name: string): SegmentName | undefined {
  const m = SEGMENT_RE.exec(name);
  return m ? { pid: Number(m[1]), start: m[2] ?? '0', boot: m[4] ?? '' } : undefined;
}

/** Is the process that writes journal/<name> still running? */
export function writerAlive(name: string, boot = bootId()): boolean {
  const seg = parseSegment(name);
  return seg !== undefined && alive(seg, boot);
}

function alive(seg: SegmentName, boot: string): boolean {
  if (earlierBoot(seg, boot)) return false;
  if (!pidAlive(seg.pid)) return false;
  const t = startTime(seg.pid);
  return t === '0' || seg.start === '0' || t === seg.start;
}

/** Written before the last boot: its name carries a boot id, not this one. */
const earlierBoot = (seg: SegmentName, boot: string): boolean => seg.boot !== '' && seg.boot !== boot;

/**
 * May the directory entries of this dead writer's segment have been lost? Only when they were not synced before its
 * 250s (its name carries a boot id) and the system has booted since (a power failure may have cut it off).
 */
export function entriesMayBeLost(name: string, boot = bootId()): boolean {
  const seg = parseSegment(name);
  return seg !== undefined && earlierBoot(seg, boot);
}

const HEADER_RE = /^QJ1 ([0-9a-z-]{22}) (\d{1,9}) (\d{1,12})\n/;

/** One record: `QJ1 <id> <envelope length> <message length>\n`, the envelope, the message. */
export function encodeRecord(id: QueueId, env: Buffer, mess: readonly Buffer[]): Buffer {
  return Buffer.concat(recordParts(id, env, mess));
}

/** encodeRecord's bytes as the buffers they are made of (written with one writev, never joined). */
function recordParts(id: QueueId, env: Buffer, mess: readonly Buffer[]): Buffer[] {
  const n = mess.reduce((a, b) => a + b.length, 0);
  return [Buffer.from(`QJ1 ${id} ${env.length} ${n}\n`, 'latin1'), env, ...mess];
}

export interface JournalRecord {
  readonly id: QueueId;
  readonly env: Buffer;
  readonly mess: Buffer;
}

/**
 * The whole records of a segment, in order. Reading stops at the first one that is short or does not check (its
 * envelope names another id or does not parse, or the message's size or sha256 differs from the envelope's): the
 * tail a power cut tore, whose fsync never returned, so no client was told its message was queued.
 */
export function readRecords(data: Buffer): JournalRecord[] {
  const out: JournalRecord[] = [];
  let at = 0;
  while (at < data.length) {
    const nl = data.indexOf(10, at);
    if (nl < 0 || nl - at > 80) break;
    const m = HEADER_RE.exec(data.toString('latin1', at, nl + 1));
    if (!m) break;
    const id = m[1] as string;
    const envLen = Number(m[2]);
    const messLen = Number(m[3]);
    const start = nl + 1;
    if (!isQueueId(id) || start + envLen + messLen > data.length) break;
    const env = data.subarray(start, start + envLen);
    const mess = data.subarray(start + envLen, start + envLen + messLen);
    const e = decodeEnvelope(env.toString('utf8'), id);
    if (typeof e === 'string' || e.size !== messLen || createHash('sha256').update(mess).digest('hex') !== e.sha256)
      break;
    out.push({ id, env, mess });
    at = start + envLen + messLen;
  }
  return out;
}

/** The writer: one per queue store that injects (quail start's SMTP processes). */
export class Journal {
  private cur: Segment | undefined;
  private seq = 0;
  private readonly dirSync: DirSyncer;
  /** Retirements under way, and those of rotated segments still waiting for their time (each runs once). */
  private readonly retiring = new Set<Promise<void>>();
  private readonly waiting = new Set<() => void>();
  private readonly start = startTime(process.pid);
  private readonly boot = bootId();
  /** The records stand for mess/ and env/'s entries: the store need not sync those directories before a 250. */
  readonly coversEntries: boolean;
  private readonly rotateMs: number;
  private readonly rotateBytes: number;
  private readonly retireMs: number;
  /** Segments whose retirement failed (left in journal/ for recovery, which settles them). */
  retireFailures = 0;
  /** Retirements that synced the file system at once rather than each queued message's files (tests). */
  fileSystemSyncs = 0;
  /** Retirements that synced mess/ and env/, making their messages' entries durable (tests). */
  entrySyncs = 0;
  private readonly syncProgram: string;

  constructor(
    private readonly host: JournalHost,
    opts: JournalOptions = {},
  ) {
    this.dirSync = new DirSyncer(host.layout.sub('journal'));
    this.rotateMs = opts.rotateMs ?? 1000;
    this.rotateBytes = opts.rotateBytes ?? 4 * 1024 * 1024;
    this.retireMs = opts.retireMs ?? 2000;
    this.coversEntries = opts.entries !== false && this.boot !== '';
    this.syncProgram = opts.syncProgram ?? 'sync';
  }

  /**
   * Appends one message's record and resolves once it is on disk: with the segment's name the first time, and by the
   * segment's next grouped fsync. `mess` is every byte of mess/<id>, in order.
   */
  commit(id: QueueId, env: Buffer, mess: readonly Buffer[]): Promise<void> {
    const seg = this.segment();
    const rec = recordParts(id, env, mess);
    const length = rec.reduce((a, b) => a + b.length, 0);
    try {
      writevAllSync(seg.fd, rec);
    } catch (err) {
      // a part of a record (ENOSPC): nothing may follow it in this segment, since reading stops there
      this.rotate(seg);
      throw err;
    }
    seg.ids.push(id);
    seg.bytes += length;
    const done = Promise.all([seg.made, seg.syncer.sync()]).then(
      () => undefined,
      (err: unknown) => {
        // after a failed fsync a later one may report success for pages it lost: this segment takes no more records
        this.rotate(seg);
        throw err;
      },
    );
    if (seg.bytes >= this.rotateBytes) this.rotate(seg);
    return done;
  }

  private segment(): Segment {
    if (this.cur?.open) return this.cur;
    const boot = this.coversEntries ? `.${this.boot}` : '';
    const path = join(this.host.layout.sub('journal'), `${process.pid}.${this.start}.${++this.seq}${boot}.jnl`);
    const fd = openSync(path, 'wx', 0o600);
    const owner = this.host.owner;
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    const seg: Segment = {
      path,
      fd,
      syncer: new DirSyncer(path),
      made: this.dirSync.sync(),
      ids: [],
      bytes: 0,
      open: true,
    };
    seg.made.catch(() => undefined); // a failure reaches every commit that waits on it
    this.cur = seg;
    setTimeout(() => this.rotate(seg), this.rotateMs).unref();
    return seg;
  }

  /** The segment takes no more records; it is retired later (or at once, `now`). */
  private rotate(seg: Segment, now = false): void {
    if (!seg.open) return;
    seg.open = false;
    if (this.cur === seg) this.cur = undefined;
    closeSync(seg.fd);
    const run = (): void => {
      clearTimeout(timer);
      if (!this.waiting.delete(run)) return;
      const p = this.retire(seg).finally(() => this.retiring.delete(p));
      this.retiring.add(p);
    };
    this.waiting.add(run);
    const timer = now ? undefined : setTimeout(run, this.retireMs).unref();
    if (now) run();
  }

  /**
   * A segment's messages still queued get their own files synced, then (when the records stand for them) mess/ and
   * env/; then the segment goes, and (again when the records stand for the entries) journal/ is synced, since a
   * segment that came back after a power cut would restore its removed messages. Without that, its removal needs no
   * sync: recovery changes nothing for intact messages.
   */
  private async retire(seg: Segment): Promise<void> {
    try {
      await Promise.all([seg.made, seg.syncer.sync()]);
      const L = this.host.layout;
      const queued: QueueId[] = [];
      for (const id of seg.ids) if (await exists(L.env(id))) queued.push(id);
      // Many still queued (a backlog: delivery held or slower than acceptance): one syncfs of the queue's file
      // system instead of two fdatasyncs each; a few: their own syncs (a syncfs would also write out the spare
      // files' pages, rewritten before they ever need to reach the disk).
      if (queued.length >= SYNCFS_FROM && (await syncFileSystem(seg.path, this.syncProgram))) this.fileSystemSyncs++;
      else {
        await syncQueued(L, queued);
        // the entries of its messages, and the removals made since: after this a missing id was removed for good
        if (this.coversEntries) {
          await Promise.all([this.host.messSync.sync(), this.host.envSync.sync()]);
          this.entrySyncs++;
        }
      }
      unlinkSync(seg.path);
      // its name gone from the disk too: a segment back after a power cut would bring back its removed messages
      if (this.coversEntries) await this.dirSync.sync();
    } catch {
      this.retireFailures++;
    } finally {
      seg.syncer.close();
    }
  }

  /**
   * Settles, in the background, the segments of writers that are gone (a process of this queue killed before it
   * retired them, e.g. an SMTP child that root restarted), as recovery would; a failure leaves them to recovery.
   * Resolves when done (tests).
   */
  adopt(): Promise<void> {
    return settleJournal(this.host.layout, this.host.owner).then(
      () => undefined,
      () => {
        this.retireFailures++;
      },
    );
  }

  /** Retires every segment now (a clean stop); resolves when done. What a crash leaves, recovery settles. */
  async close(): Promise<void> {
    if (this.cur) this.rotate(this.cur, true);
    for (const run of [...this.waiting]) run(); // segments rotated, waiting for their retirement: now
    await Promise.all([...this.retiring]);
    this.dirSync.close();
  }
}

/** From this many messages still queued in a retired segment, one syncfs replaces their files' fdatasyncs. */
export const SYNCFS_FROM = 64;

const execFileAsync = promisify(execFile);

/**
 * syncfs(2) of the file system holding `path`: every dirty page and inode on it reaches the disk, with one flush.
 * Node has no binding for it (a native addon would need a compiler wherever quail is installed), so coreutils'
 * `sync --file-system` makes the call (Linux; it reports write-back errors since Linux 5.8). False when it cannot
 * run or fails: the caller syncs file by file.
 */
async function syncFileSystem(path: string, program: string): Promise<boolean> {
  try {
    await execFileAsync(program, ['--file-system', path], {
      env: { PATH: '/usr/bin:/bin' },
      timeout: 60_000,
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * fdatasync of mess/<id> and env/<id> for each id still queued (env/ present), 16 at a time: a segment holds up to a
 * thousand messages, and a descriptor is held open while its sync waits (the process's limit is shared with its
 * connections).
 */
async function syncQueued(L: Layout, ids: readonly QueueId[]): Promise<void> {
  let next = 0;
  const one = async (id: QueueId): Promise<void> => {
    for (const path of [L.env(id), L.mess(id)]) {
      let fd: number;
      try {
        fd = openSync(path, 'r');
      } catch (err) {
        if (errCode(err) === 'ENOENT') return; // removed meanwhile: delivered or bounced
        throw err;
      }
      try {
        await datasync(fd);
      } finally {
        closeSync(fd);
      }
    }
  };
  const lane = async (): Promise<void> => {
    while (next < ids.length) await one(ids[next++] as QueueId);
  };
  await Promise.all(Array.from({ length: Math.min(16, ids.length) }, lane));
}

/** Numbers the tmp names of restores, unique in this process (two settles may run at once: adopt and recover). */
let restores = 0;

export interface SettleReport {
  /** Ids whose mess/ or env/ file a record rewrote. */
  readonly restored: QueueId[];
  /** Segments of live writers, left alone. */
  readonly live: number;
}

/**
 * Recovery's part (docs/QUEUE.md, "Recovery"): for every segment whose writer is gone, each record whose id is still
 * queued (env/ present, not being removed) is checked against its files; a file that differs from the record (empty,
 * short, another message's old bytes) is rewritten from it; the files are synced, and the segment removed. An id no
 * longer in env/ was removed (delivered), and its record is not used, unless the segment's entries may have been lost
 * (entriesMayBeLost: written before the last boot, its entries unsynced): then its message is restored whole, unless
 * trash/ shows its removal.
 */
export async function settleJournal(L: Layout, owner: Owner | undefined): Promise<SettleReport> {
  const dir = L.sub('journal');
  const restored: QueueId[] = [];
  const boot = bootId();
  let live = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return { restored, live };
    throw queueError(`cannot list ${dir}`, err);
  }
  for (const name of names.sort()) {
    const path = join(dir, name);
    const seg = parseSegment(name);
    if (seg === undefined) {
      // not a segment: never deleted (the queue's rule), set aside
      try {
        await moveToCorrupt(path, L.sub('corrupt'), `journal.${name}`);
      } catch (err) {
        if (errCode(err) !== 'ENOENT') throw queueError(`cannot move ${path} to corrupt/`, err);
      }
      continue;
    }
    if (alive(seg, boot)) {
      live++;
      continue;
    }
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      if (errCode(err) === 'ENOENT') continue;
      throw queueError(`cannot read ${path}`, err);
    }
    const queued: QueueId[] = [];
    const before = restored.length; // this segment's restores, not every earlier segment's again
    const lost = earlierBoot(seg, boot);
    for (const r of readRecords(data)) {
      if (await exists(L.trash(r.id))) continue;
      if (!lost && !(await exists(L.env(r.id)))) continue;
      queued.push(r.id);
      const envOk = envelopeStands(L.env(r.id), r);
      const messOk = sameBytes(L.mess(r.id), r.mess);
      if (envOk && messOk) continue;
      try {
        if (!messOk) await rewrite(L.upd(r.id, ++restores), L.mess(r.id), r.mess, owner);
        if (!envOk) await rewrite(L.upd(r.id, ++restores), L.env(r.id), r.env, owner);
      } catch (err) {
        throw queueError(`cannot restore ${r.id} from the journal`, err);
      }
      restored.push(r.id);
    }
    try {
      await syncQueued(L, queued);
      if (restored.length > before) for (const d of ['mess', 'env'] as const) await fsyncDir(L.sub(d));
    } catch (err) {
      throw queueError('cannot sync the messages of a journal segment', err);
    }
    await unlinkQuiet(path);
  }
  return { restored, live };
}

/** env/<id> parses as this id's envelope for the same message (a later update of its recipients stands). */
function envelopeStands(path: string, r: JournalRecord): boolean {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return false;
  }
  const now = decodeEnvelope(text, r.id);
  const then = decodeEnvelope(r.env.toString('utf8'), r.id);
  return typeof now !== 'string' && typeof then !== 'string' && now.sha256 === then.sha256 && now.size === then.size;
}

function sameBytes(path: string, want: Buffer): boolean {
  try {
    return readFileSync(path).equals(want);
  } catch {
    return false;
  }
}

async function rewrite(tmp: string, path: string, data: Buffer, owner: Owner | undefined): Promise<void> {
  try {
    await writeSynced(tmp, data, owner);
    renameSync(tmp, path);
  } catch (err) {
    await unlinkQuiet(tmp);
    throw err;
  }
}
