// The unprivileged send process (qmail-send): queue, scheduler, remote delivery, bounces; local deliveries through root
// (lspawn.ts), except those of its own account, which it runs itself (LspawnClient.ownJob).
import { basename, dirname, join } from 'node:path';
import { errText, ignoreUserSignals, TurnBatch, unbatch, type BatchMessage } from '../core/index.js';
import type { LocalDeliverer, LocalJob, LocalResult } from '../local/index.js';
import { ipcProgramWatch, killPrograms, watchPrograms } from '../local/index.js';
import type { HeldLock } from '../held/index.js';
import { isQueueId, type FileQueue } from '../queue/index.js';
import { openScheduledQueue, QueueLockedError } from './queue-open.js';
import { becomeAccount, reportCrashes } from './child-common.js';
import type { EventLog } from './log.js';
import type { OwnDelivery } from './lspawn.js';
import type { FromSend, ToSend } from './send.js';
import { localDeliverer } from './vdeliver-link.js';
import { LogBatch } from './log-batch.js';
import { makeSender } from './sender.js';

ignoreUserSignals(); // no debugger on SIGUSR1 (core/signals.ts)

const sendNow = (m: FromSend | BatchMessage<FromSend>): void => {
  if (process.connected) process.send?.(m);
};
// Local delivery requests, and the log events that precede them, leave at the end of the event-loop turn as one
// message (src/core/turn-batch.ts); anything else is sent after what waits there, in order.
const turn = new TurnBatch<FromSend>(sendNow);
// log events wait for a 20 ms window (log-batch.ts); any other message sends them first, in order
const logs = new LogBatch((m) => turn.send(m));
const send = (m: FromSend): void => {
  logs.flush();
  if (m.type === 'deliver') return turn.send(m);
  turn.flush();
  sendNow(m);
};
const log: EventLog = { event: (event, fields) => logs.add(event, fields) };
const deferral = (text: string): LocalResult => ({ result: 'deferral', report: `${text}\n` });

/** Reports `error` to the parent, then leaves (exit 100: the parent decides what follows). */
function fatal(error: string): void {
  if (!process.connected) process.exit(100);
  logs.flush();
  turn.flush();
  process.send?.({ type: 'fatal', error } satisfies FromSend, () => process.exit(100));
}

/**
 * qmail-send's end of qmail-lspawn: one request per local delivery, answered by the root parent (lspawn.ts); or, for a
 * mailbox of this process's own account found in users/cdb, delivered here (`own`, below).
 */
class LspawnClient {
  private nextId = 1;
  private readonly pending = new Map<number, (r: LocalResult) => void>();
  /** Root's `start` (and each reload) says whether this process delivers its own account's mail itself. */
  private own: OwnDelivery | undefined;
  private ownDeliverer: LocalDeliverer | undefined;
  private readonly uid = process.getuid?.() ?? -1;
  private readonly gid = process.getgid?.() ?? -1;

  constructor(private readonly messDir: string) {}

  setOwn(own: OwnDelivery): void {
    this.own = own;
  }

  /**
   * A job this process may run itself: its account's own uid and gid (never root), found in users/cdb, which reads the
   * same for root as for this account, and one delivery process per uid. Root's lspawn would re-derive the same job
   * and give it to a worker running as this very account: nothing is gained by going through root but two processes'
   * wake-ups per message (docs/PERFORMANCE.md, twenty-second pass). A passwd or alias account is looked up again by
   * root, whose view of home directories this account may not share.
   */
  private ownJob(job: LocalJob): LocalJob | undefined {
    const own = this.own;
    if (own === undefined || !own.inProcess || this.uid <= 0) return undefined;
    if (job.uid !== this.uid || job.gid !== this.gid) return undefined;
    if (job.via !== 'simple' && job.via !== 'wildcard') return undefined;
    return { ...job, defaultDelivery: own.defaultDelivery };
  }

  deliver(job: LocalJob): Promise<LocalResult> {
    const mine = this.ownJob(job);
    if (mine !== undefined) return this.deliverHere(mine);
    // Root is told which queued message, never a path: it opens queue/mess/<id> itself.
    if (dirname(job.messagePath) !== this.messDir)
      return Promise.resolve(deferral(`Not a queued message: ${job.messagePath}. (#4.3.0)`));
    if (!process.connected) return Promise.resolve(deferral('qmail-lspawn is gone: quail start is stopping. (#4.3.0)'));
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      send({
        type: 'deliver',
        id,
        request: { msg: basename(job.messagePath), local: job.local, domain: job.domain, sender: job.sender },
      });
    });
  }

  /** qmail-local in this process (LocalDeliverer's path for a process that is the job's uid already). */
  private async deliverHere(job: LocalJob): Promise<LocalResult> {
    // `| quail vdeliver` runs in-process here too, as in a worker (vdeliver-link.ts)
    this.ownDeliverer ??= localDeliverer({ copyUnreadable: false });
    try {
      return await this.ownDeliverer.deliver(job);
    } catch (err) {
      return deferral(`Unexpected error in qmail-local: ${errText(err)}. (#4.3.0)`);
    }
  }

  /** At stop, after the scheduler's deliveries finished: what the in-process deliveries opened (the directory). */
  async close(): Promise<void> {
    await this.ownDeliverer?.close();
  }

  settle(id: number, result: LocalResult): void {
    const done = this.pending.get(id);
    this.pending.delete(id);
    done?.(result);
  }
}

/** Runs in the child; after `ready`, everything it does is driven by the parent's messages (send.ts). */
export async function serveSend(root: string, uid: number, gid: number, mxPort: number | undefined): Promise<void> {
  if (!becomeAccount(uid, gid, fatal)) return;
  reportCrashes();
  // the program groups of the deliveries run here (its own account's) are reported to root before their commands
  // run: this process SIGKILLed, root ends them (send.ts)
  watchPrograms(ipcProgramWatch());
  let queue: FileQueue;
  let lock: HeldLock;
  try {
    ({ queue, lock } = await openScheduledQueue(root, log));
  } catch (err) {
    if (err instanceof QueueLockedError) return fatal(err.message);
    fatal(
      `cannot open the queue of ${root} as uid ${process.getuid?.() ?? '?'}: ${errText(err)}; that account must be able to reach the mail root (mode 755 on it and the directories above) and own queue/ (quail init does that)`,
    );
    return;
  }
  const lspawn = new LspawnClient(join(root, 'queue', 'mess'));
  const sender = makeSender({
    root,
    queue,
    log,
    ...(mxPort !== undefined ? { mxPort } : {}),
    local: (job) => lspawn.deliver(job),
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await sender.stop();
      await lspawn.close().catch(() => undefined);
      queue.close();
      await lock.close().catch(() => undefined);
      logs.flush();
      turn.flush();
      process.disconnect?.();
      process.exit(0);
    })();
    return stopping;
  };
  // root batches the answers and wake-ups of one turn (send.ts)
  process.on('message', (raw: unknown) => unbatch(raw, (item) => onParent(item as ToSend)));
  const onParent = (m: ToSend): void => {
    switch (m.type) {
      case 'start':
        lspawn.setOwn(m.own);
        sender.scheduler.start().then(
          () => {
            sender.held.start();
            send({ type: 'started' });
          },
          (err: unknown) => fatal(`the scheduler cannot start: ${errText(err)}`),
        );
        break;
      case 'delivered':
        lspawn.settle(m.id, m.result);
        break;
      case 'trigger':
        // root's note of a message queued by the SMTP child: wake our watchers (the scheduler, the held pusher)
        // directly, no socket round trip; named, the scheduler reads that envelope without listing env/ (noteNew)
        queue.wakeWatchers('new', m.id !== undefined && isQueueId(m.id) ? m.id : undefined);
        break;
      case 'own':
        lspawn.setOwn(m.own);
        break;
      case 'reload':
        sender.scheduler.reload();
        break;
      case 'flush':
        sender.scheduler.flush();
        break;
      case 'stop':
        void stop();
        break;
    }
  };
  // The parent gone (killed): nobody answers local deliveries, and a new quail start's send process will recover the
  // queue and repeat what runs now (at least once, docs/QUEUE.md). Finishing it here would deliver beside that one:
  // leave at once, programs of deliveries in progress ended with us (the queue's lock goes with the process).
  process.on('disconnect', () => {
    if (stopping !== undefined) return; // root's stop: the deliveries finish and are recorded
    killPrograms();
    process.exit(0);
  });
  // Signals sent to the whole process group are the parent's to act on: it stops or reloads us in order.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGALRM'] as const) process.on(sig, () => undefined);
  send({ type: 'ready', uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 });
}

const [root, uid, gid, mxPort] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined) {
  void serveSend(root, Number(uid), Number(gid), mxPort === undefined || mxPort === '' ? undefined : Number(mxPort));
}
