// qmail-send's share of quail start: the scheduler with remote delivery over an open queue; local delivery passed in.
import { Control, ControlFileCache } from '../control/index.js';
import type { LocalJob, LocalResult } from '../local/index.js';
import { HeldPusher } from '../held/index.js';
import type { FileQueue } from '../queue/index.js';
import { RemoteEngine } from '../remote/index.js';
import { Scheduler } from '../scheduler/index.js';
import { lookupAssignment, systemPasswd } from '../users/index.js';
import type { EventLog } from './log.js';

export interface SenderOptions {
  readonly root: string;
  readonly queue: FileQueue;
  readonly log: EventLog;
  /** QUAIL_MX_PORT, already checked (supervisor.ts mxPortFromEnv). */
  readonly mxPort?: number;
  /** qmail-lspawn: a LocalDeliverer in this process, or (as root) a request to the root parent (send-child.ts). */
  readonly local: (job: LocalJob) => Promise<LocalResult>;
}

/** What runs as qmail-send: one process or, as root, the unprivileged send child. */
export interface Sender {
  readonly scheduler: Scheduler;
  /** Pushes held domains' Maildirs to their customers (src/held): beside the scheduler, not a channel of it. */
  readonly held: HeldPusher;
  /** Stops the scheduler (deliveries in progress finish and are recorded) and closes idle remote connections. */
  stop(): Promise<void>;
}

export function makeSender(o: SenderOptions): Sender {
  const { root, queue, log } = o;
  // Control files are read per delivery, as qmail-remote does; unchanged ones are not re-read (ControlFileCache).
  const remoteControl = new ControlFileCache(root);
  const engine = new RemoteEngine({
    root,
    control: () => remoteControl.snapshot(),
    ...(o.mxPort !== undefined ? { mxPort: o.mxPort } : {}),
  });
  const scheduler = new Scheduler({
    root,
    queue,
    control: () => new Control(root),
    clock: () => Math.floor(Date.now() / 1000),
    passwd: systemPasswd({ root }),
    logger: {
      event: (name, fields) => log.event(`send.${name}`, fields),
    },
    lookupAssignment,
    local: o.local,
    remote: (job) => engine.deliver(job),
  });
  const held = new HeldPusher({
    root,
    control: () => new Control(root),
    inject: async (m) => String(await queue.inject(m)),
    watch: (listener) => queue.watch(listener),
    log: (event, fields) => log.event(event, fields),
    intervalSeconds: heldInterval(root),
  });
  return {
    scheduler,
    held,
    async stop() {
      await Promise.all([scheduler.stop(), held.stop()]);
      engine.close();
    },
  };
}

/** control/heldinterval (default 120 s); an unreadable or bad file keeps the default rather than stopping start. */
function heldInterval(root: string): number {
  try {
    return Math.max(1, new Control(root).number('heldinterval').value);
  } catch {
    return 120;
  }
}
