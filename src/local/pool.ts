// LocalDeliverer: runs each job as its uid/gid — in worker processes forked per (uid, gid) when root, several per key.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TurnBatch, unbatch, type BatchMessage } from '../core/index.js';
import { UniqueNamer } from '../maildir/index.js';
import { defaultPath } from './env.js';
import { GroupEndings, ProgramGroups } from './groups.js';
import { deferral, deliverLocal, jobArgs, jobInjector, ROOT_REFUSED, wrongUidText } from './deliver.js';
import type { InProcessPrograms } from './hook.js';
import type { WorkerReply, WorkerRequest } from './protocol.js';
import type { LocalJob, LocalResult } from './types.js';

export interface LocalDelivererOptions {
  /** PATH for programs (default `<job.root>/bin:/usr/local/bin:/usr/bin:/bin`). */
  readonly path?: string;
  /** A worker with nothing to do exits after this long (default 60 s). */
  readonly idleMs?: number;
  /** At most this many idle workers are kept; busy ones are never stopped (default 16). */
  readonly maxIdleWorkers?: number;
  /**
   * At most this many worker processes per (uid, gid): 0 = one per two CPUs (at least 1, at most 16), the default; at most 64.
   * src/start's lspawn passes control/localworkers.
   */
  readonly workersPerUid?: number;
  /**
   * As root, a message file the job's uid cannot read is copied (as root) into a private file it can (default
   * true). false: the worker opens `messagePath` itself with the job's uid and nothing here reads it as root; for
   * callers that do not trust the path (src/start's lspawn copies from a checked descriptor itself).
   */
  readonly copyUnreadable?: boolean;
  /**
   * Program lines run in-process (`| quail vdeliver`): its hook here, its worker entry for the forked workers. Default:
   * none, every program line is spawned and workers run worker.js. src/start passes vdeliver's (vdeliver-link.ts).
   */
  readonly inProcess?: InProcessPrograms;
}

interface Worker {
  readonly key: string;
  readonly child: ChildProcess;
  readonly pending: Map<number, (r: LocalResult) => void>;
  /** The jobs of one event-loop turn travel as one message (src/core/turn-batch.ts). */
  readonly jobs: TurnBatch<WorkerRequest>;
  /** The program groups it said run: ended when it dies, however it dies (groups.ts). */
  readonly programs: ProgramGroups;
  idleTimer?: NodeJS.Timeout;
}

const WORKER_PATH = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');
const CRASHED = 'qmail-local crashed.';
/** One worker per two CPUs, but not more than this many by default (control/localworkers may say more). */
const DEFAULT_WORKERS_MAX = 16;
/** The most any setting gives (the catalogue's cap of control/localworkers). */
const WORKERS_MAX = 64;

/**
 * The number of worker processes per (uid, gid) for a setting: 0 is one per two CPUs (`os.availableParallelism()`, at
 * least 1, at most 16: the SMTP child, root and the send child want the other cores; on 2 CPUs the bench measured
 * no gain from a second worker, docs/PERFORMANCE.md); anything else as given, between 1 and 64.
 */
function workersPerKey(setting: number): number {
  if (!Number.isFinite(setting) || setting <= 0)
    return Math.max(1, Math.min(Math.floor(availableParallelism() / 2), DEFAULT_WORKERS_MAX));
  return Math.min(WORKERS_MAX, Math.max(1, Math.floor(setting)));
}

/** Can `uid`/`gid` (no supplementary groups) read `path`: every parent searchable, the file readable? */
function readableBy(path: string, uid: number, gid: number): boolean {
  const can = (p: string, bit: number): boolean => {
    const st = statSync(p);
    if (st.uid === uid) return (st.mode & (bit << 6)) !== 0;
    if (st.gid === gid) return (st.mode & (bit << 3)) !== 0;
    return (st.mode & bit) !== 0;
  };
  try {
    if (!can(path, 4)) return false;
    for (let d = dirname(path); ; d = dirname(d)) {
      if (!can(d, 1)) return false;
      if (d === dirname(d)) return true;
    }
  } catch {
    return false;
  }
}

export class LocalDeliverer {
  /** The live workers of each (uid, gid) key, oldest first. */
  private readonly workers = new Map<string, Worker[]>();
  private perKey: number;
  private nextId = 1;
  private spoolDir: string | undefined;
  private spoolSeq = 0;
  private closed = false;
  private readonly namer = new UniqueNamer();
  /** The ending of dead workers' program groups, until done: close() waits for them too. */
  private readonly endings = new GroupEndings();

  constructor(private readonly opts: LocalDelivererOptions = {}) {
    this.perKey = workersPerKey(opts.workersPerUid ?? 0);
  }

  /** How many worker processes one (uid, gid) may have now. */
  get workersPerUid(): number {
    return this.perKey;
  }

  /**
   * A new limit (SIGHUP: control/localworkers again; 0 = one per two CPUs). Idle workers above it stop now; busy ones
   * finish their jobs and stop when idle (armIdle), and no job is sent to a worker above the limit meanwhile.
   */
  setWorkersPerUid(setting: number): void {
    this.perKey = workersPerKey(setting);
    for (const list of this.workers.values()) {
      for (const w of list.slice(this.perKey)) if (w.pending.size === 0) this.retire(w);
    }
  }

  /** Delivers one job as its uid/gid and reports like qmail-lspawn. Never throws. */
  async deliver(job: LocalJob): Promise<LocalResult> {
    if (job.uid === 0) return deferral(ROOT_REFUSED);
    const me = process.getuid?.() ?? -1;
    const path = this.opts.path ?? defaultPath(job.root);
    if (me !== 0) {
      if (me !== job.uid) return deferral(wrongUidText(me, job.uid));
      return deliverLocal(job, {
        path,
        namer: this.namer,
        ...(this.opts.inProcess ? { programHook: this.opts.inProcess.hook } : {}),
      });
    }
    if (this.closed) return deferral('Local delivery is shutting down. (#4.3.0)');
    let messagePath = job.messagePath;
    let spooled: string | undefined;
    try {
      if (this.opts.copyUnreadable !== false && !readableBy(messagePath, job.uid, job.gid)) {
        spooled = this.spool(messagePath, job.uid, job.gid);
        messagePath = spooled;
      }
    } catch {
      return deferral('Unable to read message. (#4.3.0)');
    }
    try {
      return await this.send(job, {
        id: this.nextId++,
        args: jobArgs(job),
        messagePath,
        path,
        injector: jobInjector(job),
      });
    } finally {
      if (spooled !== undefined) {
        try {
          unlinkSync(spooled);
        } catch {
          // already gone
        }
      }
    }
  }

  /**
   * Stops every worker (after their current jobs are answered or failed) and returns once each has exited. An idle
   * worker was unref'd (armIdle) so that it does not keep the server running; waiting for its exit must ref it
   * again, or nothing keeps the event loop alive until the 'exit' event and close() never settles.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.opts.inProcess?.close();
    const exits = [...this.workers.values()].flat().map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.idleTimer) clearTimeout(w.idleTimer);
          if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
          w.child.ref();
          w.child.once('exit', () => resolve());
          if (w.child.connected) w.child.disconnect();
        }),
    );
    await Promise.all(exits);
    await this.endings.settled();
    this.workers.clear();
    if (this.spoolDir !== undefined) rmSync(this.spoolDir, { recursive: true, force: true });
  }

  /** A private copy the worker can read (the queue's file may be readable by the queue user only). */
  private spool(src: string, uid: number, gid: number): string {
    if (this.spoolDir === undefined) {
      this.spoolDir = mkdtempSync(join(tmpdir(), 'quail-local-'));
      chmodSync(this.spoolDir, 0o711);
    }
    const dst = join(this.spoolDir, `${process.pid}.${++this.spoolSeq}`);
    copyFileSync(src, dst);
    chownSync(dst, uid, gid);
    chmodSync(dst, 0o400);
    return dst;
  }

  private send(job: LocalJob, req: WorkerRequest): Promise<LocalResult> {
    const w = this.worker(job.uid, job.gid);
    if (w.idleTimer) clearTimeout(w.idleTimer);
    // A job in flight keeps this process alive; an idle worker does not.
    w.child.ref();
    w.child.channel?.ref();
    return new Promise((resolve) => {
      w.pending.set(req.id, (r) => {
        resolve(r);
        if (w.pending.size === 0) this.armIdle(w);
      });
      w.jobs.send(req);
    });
  }

  private settle(w: Worker, id: number, r: LocalResult): void {
    const done = w.pending.get(id);
    if (!done) return;
    w.pending.delete(id);
    done(r);
  }

  private armIdle(w: Worker): void {
    if (w.idleTimer) clearTimeout(w.idleTimer);
    w.child.unref();
    w.child.channel?.unref();
    const all = [...this.workers.values()].flat();
    const idle = all.filter((x) => x.pending.size === 0);
    if (idle.length > (this.opts.maxIdleWorkers ?? 16)) return this.retire(w);
    // above the key's limit (lowered by setWorkersPerUid while it was busy)
    if ((this.workers.get(w.key)?.indexOf(w) ?? 0) >= this.perKey) return this.retire(w);
    w.idleTimer = setTimeout(() => this.retire(w), this.opts.idleMs ?? 60_000);
    w.idleTimer.unref();
  }

  private retire(w: Worker): void {
    if (w.pending.size > 0) return;
    if (w.idleTimer) clearTimeout(w.idleTimer);
    this.forget(w);
    if (w.child.connected) w.child.disconnect();
  }

  /** `w` takes no more jobs: out of its key's list (a dead or stopping worker). */
  private forget(w: Worker): void {
    const list = this.workers.get(w.key);
    const i = list?.indexOf(w) ?? -1;
    if (list === undefined || i < 0) return;
    list.splice(i, 1);
    if (list.length === 0) this.workers.delete(w.key);
  }

  /**
   * The worker for a job of uid/gid: of the key's live workers (at most `workersPerUid`), the one with the fewest
   * pending jobs (the oldest on a tie); a new one only when every one has a job pending and there is room. One
   * worker's event loop waits for the disk in its synchronous Maildir calls (docs/PERFORMANCE.md), so the jobs of
   * one uid — every mailbox of a virtual-domain server — spread over several processes.
   */
  private worker(uid: number, gid: number): Worker {
    const key = `${uid}:${gid}`;
    const live = (this.workers.get(key) ?? []).filter((x) => x.child.connected).slice(0, this.perKey);
    let best: Worker | undefined;
    for (const x of live) if (best === undefined || x.pending.size < best.pending.size) best = x;
    if (best !== undefined && (best.pending.size === 0 || live.length >= this.perKey)) return best;
    return this.spawn(key, uid, gid);
  }

  private spawn(key: string, uid: number, gid: number): Worker {
    // libuv drops supplementary groups (setgroups(0)) before setgid/setuid: the job runs in no other group.
    const child = fork(this.opts.inProcess?.workerPath ?? WORKER_PATH, [], {
      uid,
      gid,
      cwd: '/',
      env: {},
      execArgv: [],
      // JSON: the jobs and results are plain strings and numbers, and Node's JSON channel costs about half the CPU of
      // the advanced (V8) serializer per small message (docs/PERFORMANCE.md)
      serialization: 'json',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const w: Worker = {
      key,
      child,
      pending: new Map(),
      programs: new ProgramGroups(uid),
      // a write that fails fails every job it carried (the worker is gone: 'exit' settles the rest)
      jobs: new TurnBatch((m) => {
        if (!child.connected) return failJobs(m);
        child.send(m, (err) => {
          if (err) failJobs(m);
        });
      }),
    };
    const failJobs = (m: WorkerRequest | BatchMessage<WorkerRequest>): void =>
      unbatch(m, (r) => this.settle(w, (r as WorkerRequest).id, deferral(CRASHED)));
    child.on('message', (m: unknown) =>
      unbatch(m, (r) => {
        if (w.programs.take(r)) return;
        const reply = r as WorkerReply;
        this.settle(w, reply.id, reply.result);
      }),
    );
    // a worker whose channel closed takes no more jobs; its pending ones are settled at its exit
    child.on('disconnect', () => this.forget(w));
    child.on('exit', () => {
      this.forget(w);
      // SIGKILLed (or crashed), it could not end its programs: nothing it started acts after its jobs were deferred
      this.endings.gone(w.programs);
      if (w.idleTimer) clearTimeout(w.idleTimer);
      for (const id of [...w.pending.keys()]) this.settle(w, id, deferral(CRASHED));
    });
    child.on('error', () => {
      this.forget(w);
      for (const id of [...w.pending.keys()]) this.settle(w, id, deferral(CRASHED));
    });
    const list = this.workers.get(key);
    if (list) list.push(w);
    else this.workers.set(key, [w]);
    return w;
  }
}
