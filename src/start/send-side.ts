// qmail-send's side of quail start: the scheduler and its deliveries in this process, or (as root) in the send child.
import { closeSync, constants, fchownSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FileQueue } from '../queue/index.js';
import { openScheduledQueue } from './queue-open.js';
import { tcptoPath } from '../remote/index.js';
import type { EventLog } from './log.js';
import type { Account } from './privchild.js';
import { SendChild } from './send.js';
import { makeSender } from './sender.js';
import { localDeliverer } from './vdeliver-link.js';

export interface SendSide {
  /** Not root: the queue this process opened (its SMTP listeners inject into it). As root: none here. */
  readonly queue: FileQueue | undefined;
  /** As root: the send child's pid and how often it was restarted. */
  readonly pid: number | undefined;
  readonly restarts: number;
  /** As root, while the send child is being replaced: when it died and the back-off before the next one. */
  readonly restarting: { readonly since: string; readonly backoffMs: number } | undefined;
  /** Starts the scheduler (once the listeners are up). */
  start(): Promise<void>;
  /** The SMTP child queued a message (`id`, when known). */
  trigger(id?: string): void;
  /** SIGHUP: locals and virtualdomains again. */
  reload(): void;
  /** SIGALRM: every deferred recipient now. */
  flush(): void;
  /** Stops the scheduler (deliveries in progress finish and are recorded), then the delivery workers and the queue. */
  close(): Promise<void>;
}

export interface SendSideOptions {
  readonly root: string;
  readonly log: EventLog;
  /** As root: the unprivileged account (control/quailuser) the send child runs as. */
  readonly account: Account | undefined;
  readonly mxPort?: number;
  /** As root: a restarted send child runs (its pid changed, for quail.json). */
  readonly onRunning: () => void;
  /** As root: the send child died (it is restarting, for quail.json). */
  readonly onCrash?: () => void;
}

export async function startSendSide(o: SendSideOptions): Promise<SendSide> {
  return o.account ? sendChild(o, o.account) : inProcess(o);
}

/** Not root: one process, as the invoking user (deliveries for other uids defer, src/local). */
async function inProcess(o: SendSideOptions): Promise<SendSide> {
  const { queue, lock } = await openScheduledQueue(o.root, o.log);
  const deliverer = localDeliverer();
  const sender = makeSender({
    root: o.root,
    queue,
    log: o.log,
    ...(o.mxPort !== undefined ? { mxPort: o.mxPort } : {}),
    local: (job) => deliverer.deliver(job),
  });
  let closed: Promise<void> | undefined;
  return {
    queue,
    pid: undefined,
    restarts: 0,
    restarting: undefined,
    start: async () => {
      await sender.scheduler.start();
      sender.held.start();
    },
    trigger: () => queue.wakeWatchers('new'),
    reload: () => sender.scheduler.reload(),
    flush: () => sender.scheduler.flush(),
    close() {
      closed ??= (async () => {
        await sender.stop();
        await deliverer.close();
        queue.close();
        await lock.close();
      })();
      return closed;
    },
  };
}

/** As root: the send child as the account; local deliveries come back to this process's Lspawn. */
async function sendChild(o: SendSideOptions, account: Account): Promise<SendSide> {
  giveTcpto(o.root, account);
  const child = new SendChild({
    root: o.root,
    account,
    log: o.log,
    ...(o.mxPort !== undefined ? { mxPort: o.mxPort } : {}),
    onRunning: o.onRunning,
    ...(o.onCrash ? { onCrash: o.onCrash } : {}),
  });
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      await child.stop();
      await child.lspawn.close();
    })();
    return closed;
  };
  try {
    await child.open();
  } catch (err) {
    await close();
    throw err;
  }
  return {
    queue: undefined,
    get pid() {
      return child.pid;
    },
    get restarts() {
      return child.restarts;
    },
    get restarting() {
      return child.restarting;
    },
    start: () => child.start(),
    trigger: (id) => child.trigger(id),
    reload: () => child.reload(),
    flush: () => child.flush(),
    close,
  };
}

/**
 * run/ stays root's (quail.pid, quail.json are written there as root), so the send child could not create
 * run/tcpto, remote delivery's memory of timed-out hosts: root makes the file (or takes one it finds) and gives
 * it to the account, which rewrites it in place. A link or anything but a regular file is left alone (a hint only).
 */
function giveTcpto(root: string, account: Account): void {
  const path = tcptoPath(root);
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644);
  } catch {
    return;
  }
  try {
    if (fstatSync(fd).isFile()) fchownSync(fd, account.uid, account.gid);
  } finally {
    closeSync(fd);
  }
}
