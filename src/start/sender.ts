// qmail-send's share of quail start: the scheduler with remote delivery over an open queue; local delivery passed in.
import { Control, ControlFileCache } from '../control/index.js';
import type { LocalJob, LocalResult } from '../local/index.js';
import { HeldPusher } from '../held/index.js';
import type { FileQueue } from '../queue/index.js';
import { DkimSigner } from '../msgauth/index.js';
import { RemoteEngine, type RemoteJob } from '../remote/index.js';
import { Scheduler, type OfficeRouter } from '../scheduler/index.js';
import { OfficeFileRouter } from '../offices/index.js';
import { lookupAssignment, systemPasswd } from '../users/index.js';
import { basename } from 'node:path';
import type { DeliveryResult } from '../core/index.js';
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
    remote: signing(new DkimSigner(root), log, (job) => engine.deliver(job)),
    ...officeRouting(root),
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

/**
 * Remote delivery with outbound DKIM: the signer decides from the message's origin (src/msgauth/README.md) and
 * its DKIM-Signature goes in front of the message as the remote engine sends it. A key that cannot be read
 * defers the delivery (mail does not leave unsigned when it should be signed).
 */
function signing(
  signer: DkimSigner,
  log: EventLog,
  deliver: (job: RemoteJob) => Promise<DeliveryResult>,
): (job: RemoteJob) => Promise<DeliveryResult> {
  const told = new Set<string>();
  return async (job) => {
    let prefix: string | undefined;
    try {
      const out = await signer.outcome(job.messagePath, job.meta ?? {}, job.sender);
      if (out.kind === 'signed') {
        prefix = out.header;
        const msg = basename(job.messagePath);
        if (!told.has(msg)) {
          // once per message, not once per recipient
          told.add(msg);
          if (told.size > 1024) told.clear();
          log.event('dkim.signed', { msg, domain: out.domain, selector: out.selector });
        }
      }
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      log.event('dkim.error', { msg: basename(job.messagePath), error: why }, 'error');
      return { result: 'deferral', report: `Unable to sign the message with DKIM: ${why} (#4.3.0)\n` };
    }
    return deliver(prefix !== undefined ? { ...job, prefix } : job);
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

/**
 * control/office set: the scheduler routes other offices' mailboxes to the office channel, from the table the
 * supervisor's keeper writes (src/offices).
 */
function officeRouting(root: string): { offices?: OfficeRouter } {
  // An unreadable control/office stops the send process (restarted): never deliver here what belongs elsewhere.
  const control = new Control(root);
  const office = control.single('office').value;
  if (office === null || office === '') return {};
  const vd = control.map('virtualdomains').value;
  return { offices: new OfficeFileRouter(root, office, new Set([...(vd?.keys() ?? [])])) };
}
