// Test helpers: a real queue on a temp dir, a fake clock, a recording logger, scripted local/remote boundaries.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryResult } from '../../src/core/index.js';
import { Control } from '../../src/control/index.js';
import type { LocalJob, LocalResult } from '../../src/local/types.js';
import { openQueue, type FileQueue, type QueuedMessage, type QueueId } from '../../src/queue/index.js';
import type { RemoteJob } from '../../src/remote/types.js';
import { lookupAssignment, tablePasswd } from '../../src/users/index.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import type { OfficeRouter, SchedulerLogger } from '../../src/scheduler/types.js';

export class FakeClock {
  constructor(public now: number) {}
  advance(seconds: number): void {
    this.now += seconds;
  }
}

export class RecordingLogger implements SchedulerLogger {
  readonly events: Array<{ name: string; fields: Record<string, string | number> }> = [];
  event(name: string, fields: Record<string, string | number>): void {
    this.events.push({ name, fields });
  }
  /** The position of the first event `name` whose fields include `fields` (-1 when there is none). */
  indexOf(name: string, fields: Record<string, string | number> = {}): number {
    return this.events.findIndex((e) => e.name === name && Object.entries(fields).every(([k, v]) => e.fields[k] === v));
  }
  has(name: string, fields: Record<string, string | number> = {}): boolean {
    return this.indexOf(name, fields) >= 0;
  }
}

export type Scripted<J, R> = (job: J, attempt: number) => R | Promise<R>;

export interface World {
  readonly root: string;
  readonly clock: FakeClock;
  readonly queue: FileQueue;
  readonly logger: RecordingLogger;
  readonly localJobs: LocalJob[];
  readonly remoteJobs: RemoteJob[];
  scheduler: Scheduler;
  /** A new Scheduler over the same root and queue (a restart). */
  restart(): Scheduler;
  inject(sender: string, recipients: string[], data?: string): Promise<QueueId>;
  /** Every message still queued, with its id. */
  all(): Promise<QueuedMessage[]>;
  /** The queued bytes of a message (latin1 text). */
  text(id: QueueId): string;
  /** Messages whose meta.origin is `origin` (and parent, when given). */
  byOrigin(origin: string, parent?: QueueId): Promise<QueuedMessage[]>;
  close(): Promise<void>;
}

export interface WorldOptions {
  readonly control?: Record<string, string>;
  /** Scripted local: by the LocalJob (local = full local part) and how many times it was called for it. */
  readonly local?: Scripted<LocalJob, LocalResult>;
  readonly remote?: Scripted<RemoteJob, DeliveryResult>;
  readonly start?: number;
  /** Offices (issue 16): the router the scheduler asks where a local address lives. */
  readonly offices?: OfficeRouter;
}

export const DATA = 'From: someone\nSubject: test\n\nHello.\n';

export async function makeWorld(opts: WorldOptions = {}): Promise<World> {
  const root = mkdtempSync(join(tmpdir(), 'quail-sched-'));
  mkdirSync(join(root, 'control'));
  mkdirSync(join(root, 'alias'));
  const control = { me: 'mx.test\n', locals: 'mx.test\nlocal.test\n', ...(opts.control ?? {}) };
  for (const [name, content] of Object.entries(control)) writeFileSync(join(root, 'control', name), content);
  const clock = new FakeClock(opts.start ?? 1_800_000_000);
  const queue = await openQueue(root, { clock: () => clock.now * 1000 });
  const logger = new RecordingLogger();
  const localJobs: LocalJob[] = [];
  const remoteJobs: RemoteJob[] = [];
  const counts = new Map<string, number>();
  const count = (key: string): number => {
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    return n;
  };
  const passwd = tablePasswd([{ name: 'alias', uid: 1001, gid: 1001, home: join(root, 'alias') }]);
  const localFn = opts.local ?? ((): LocalResult => ({ result: 'success', report: 'did 1+0+0\n' }));
  const remoteFn =
    opts.remote ??
    ((j: RemoteJob): DeliveryResult => ({
      result: 'success',
      report: `127.0.0.1 accepted message.\nRemote host said: 250 ok ${j.recipient}\n`,
    }));
  const make = (): Scheduler =>
    new Scheduler({
      root,
      queue,
      control: () => new Control(root),
      clock: () => clock.now,
      passwd,
      logger,
      lookupAssignment,
      local: async (job) => {
        localJobs.push(job);
        return localFn(job, count(`l:${job.local}@${job.domain}`));
      },
      remote: async (job) => {
        remoteJobs.push(job);
        return remoteFn(job, count(`r:${job.recipient}`));
      },
      timers: { set: () => undefined, clear: () => undefined },
      ...(opts.offices ? { offices: opts.offices } : {}),
    });
  const world: World = {
    root,
    clock,
    queue,
    logger,
    localJobs,
    remoteJobs,
    scheduler: make(),
    restart: () => (world.scheduler = make()),
    inject: (sender, recipients, data = DATA) =>
      queue.inject({ sender, recipients, data: Buffer.from(data, 'latin1'), injector: { kind: 'uid', uid: 0 } }),
    all: async () => {
      const out: QueuedMessage[] = [];
      for (const id of await queue.ids()) {
        const m = await queue.read(id);
        if (m) out.push(m);
      }
      return out;
    },
    text: (id) => readFileSync(queue.messagePath(id), 'latin1'),
    byOrigin: async (origin, parent) =>
      (await world.all()).filter(
        (m) => m.meta['origin'] === origin && (parent === undefined || m.meta['parent'] === parent),
      ),
    close: async () => {
      await world.scheduler.stop();
      queue.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return world;
}

/** FORMAT.md 1.3 tokens our own output needs before comparing with the corpus. */
export function normalise(text: string): string {
  return text
    .replace(
      /\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [-+]\d{4}/g,
      '@DATE822@',
    )
    .replace(/\(qmail \d+ invoked/g, '(qmail @PID@ invoked');
}
