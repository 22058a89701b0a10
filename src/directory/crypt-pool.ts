// Threads for crypt(3) verification: an imported SHA-crypt, MD5-crypt, bcrypt or DES hash costs milliseconds of CPU
// per login (5,000 SHA-512 rounds: about 6 ms here). Computed on the event loop of the process that serves the
// session, each login would stop every other session of that process for that long, and a process would use one
// core for all its logins. A long-lived server (the POP3, SMTP and ODMR processes of quail start) turns the threads on
// at its start; a one-shot tool (quail checkpassword) computes inline, as before: a thread costs more to start than one
// verification. scrypt, quail's own hash, already runs in libuv's pool (node:crypto's scrypt).
//
// Why not a library: the pools on npm (piscina, workerpool) do much more than this module needs (queues, task
// cancellation, resource limits); the whole job here is one message each way and a fallback, in about a hundred lines.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** What one computation gives: the recomputed hash, or null for a scheme that is not verified. */
export type Recompute = (password: string, hash: string) => Promise<string | null>;

export interface Job {
  readonly id: number;
  readonly password: string;
  readonly hash: string;
}

export interface JobResult {
  readonly id: number;
  readonly out: string | null;
}

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, { readonly resolve: (out: string | null) => void; readonly reject: () => void }>;
  /** Jobs this thread answered (tests: the work was spread). */
  answered: number;
}

const WORKER = new URL('./crypt-worker.js', import.meta.url);

/**
 * Threads that fail before their first answer, in a row, after which every hash is computed inline (a worker file that
 * cannot load would otherwise cost a thread's start at every login).
 */
const LOST_BEFORE_OFF = 3;

/** Up to this many threads by default: one per CPU, at most 4. */
const DEFAULT_CRYPT_THREADS = Math.max(1, Math.min(4, availableParallelism()));

export class CryptThreads {
  private size = 0;
  private readonly threads: (Thread | undefined)[] = [];
  private nextId = 0;
  /** Jobs a thread answered, and jobs computed inline after their thread was lost. */
  threaded = 0;
  fellBack = 0;
  /** Threads lost before they answered anything, in a row: at LOST_BEFORE_OFF the pool turns itself off. */
  private lostUnused = 0;

  /** `workerFile`: the thread's module (tests give one that cannot load). */
  constructor(private readonly workerFile: URL = WORKER) {}

  /** Threads from now on (0: inline). Threads started before stay until they are idle and the process exits. */
  use(size: number = DEFAULT_CRYPT_THREADS): void {
    this.size = Math.max(0, Math.floor(size));
  }

  get enabled(): boolean {
    return this.size > 0;
  }

  /** How many threads answered at least one job (tests). */
  get threadsUsed(): number {
    return this.threads.filter((t) => t !== undefined && t.answered > 0).length;
  }

  /**
   * `inline(password, hash)` on a thread of the pool, or here when the pool is off or cannot start a thread. A thread
   * that dies (or fails to load) takes none of its jobs with it: they are computed here instead.
   */
  async recompute(password: string, hash: string, inline: Recompute): Promise<string | null> {
    if (this.size === 0) return inline(password, hash);
    const t = this.pick();
    if (t === undefined) return inline(password, hash);
    const id = ++this.nextId;
    try {
      const out = await new Promise<string | null>((resolve, reject) => {
        t.pending.set(id, { resolve, reject: () => reject(new Error('crypt thread lost')) });
        if (t.pending.size === 1) t.worker.ref(); // a verification under way keeps the process alive
        t.worker.postMessage({ id, password, hash } satisfies Job);
      });
      this.threaded++;
      return out;
    } catch {
      this.fellBack++;
      return inline(password, hash);
    }
  }

  /** Terminates the threads (tests; jobs under way fall back to inline). */
  async stop(): Promise<void> {
    const live = this.threads.filter((t): t is Thread => t !== undefined);
    await Promise.all(live.map((t) => t.worker.terminate()));
  }

  /** An idle thread, else a new one while there is room, else the least busy. */
  private pick(): Thread | undefined {
    let best: Thread | undefined;
    for (let i = 0; i < this.size; i++) {
      const t = this.threads[i];
      if (t === undefined) return this.start(i) ?? best;
      if (t.pending.size === 0) return t;
      if (best === undefined || t.pending.size < best.pending.size) best = t;
    }
    return best;
  }

  private start(i: number): Thread | undefined {
    let worker: Worker;
    try {
      worker = new Worker(this.workerFile);
    } catch {
      if (++this.lostUnused >= LOST_BEFORE_OFF) this.size = 0;
      return undefined; // no thread to be had (resource limits): computed inline
    }
    worker.unref();
    const t: Thread = { worker, pending: new Map(), answered: 0 };
    this.threads[i] = t;
    const lost = (): void => {
      if (this.threads[i] !== t) return; // already counted ('error' and then 'exit')
      this.threads[i] = undefined;
      if (t.answered > 0) this.lostUnused = 0;
      else if (++this.lostUnused >= LOST_BEFORE_OFF) this.size = 0;
      const jobs = [...t.pending.values()];
      t.pending.clear();
      for (const j of jobs) j.reject();
    };
    worker.on('message', (m: JobResult) => {
      const j = t.pending.get(m.id);
      if (j === undefined) return;
      t.pending.delete(m.id);
      t.answered++;
      this.lostUnused = 0;
      if (t.pending.size === 0) worker.unref();
      j.resolve(m.out);
    });
    worker.on('error', lost);
    worker.on('exit', lost);
    return t;
  }
}

/** The process's pool (off until a server turns it on: `cryptThreads.use()`). */
export const cryptThreads = new CryptThreads();
