// qmail-lspawn: the one job quail start keeps as root — a local delivery asked for by the send child, re-derived, run as its uid.
import { closeSync, constants, fchownSync, fstatSync, openSync, read, write } from 'node:fs';
import { chmod, mkdtemp, rm, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText, outcomeFromError } from '../core/index.js';
import { Control, ControlReadError } from '../control/index.js';
import type { LocalDeliverer, LocalJob, LocalResult } from '../local/index.js';
import { isQueueId } from '../queue/index.js';
import { lookupAssignment, systemPasswd, type Assignment, type PasswdSource } from '../users/index.js';
import type { EventLog } from './log.js';
import { localDeliverer } from './vdeliver-link.js';

/**
 * What the send child may ask for, as qmail-send asks qmail-lspawn: a queued message, the recipient's local part
 * (as routed: a virtual domain's prefix included) and domain, and the envelope sender. Everything else — the
 * account, uid, gid, home, extension, defaultdelivery, the message's path — the root side derives itself.
 */
export interface LspawnRequest {
  readonly msg: string;
  readonly local: string;
  readonly domain: string;
  readonly sender: string;
}

export interface LspawnOptions {
  readonly root: string;
  /** The send child's account, which owns queue/ and every message file in it. */
  readonly queueUid: number;
  readonly log: EventLog;
  /** Default: a LocalDeliverer that never reads a message path as root (copyUnreadable: false). */
  readonly deliverer?: LocalDeliverer;
  /** Default: /etc/passwd, with control/quailuser standing in for a missing alias account (as the scheduler does). */
  readonly passwd?: PasswdSource;
}

/** Root's word to the send child on deliveries as the send child's own account (Lspawn.ownDelivery). */
export interface OwnDelivery {
  readonly defaultDelivery: string;
  readonly inProcess: boolean;
}

/** Longer fields are refused: an address is at most 256 octets (RFC 5321 4.5.3.1.3), a VERP sender two of them. */
const FIELD_MAX = 4096;
/** Deliveries in progress at once: concurrencylocal is at most 120, plus those a dead send child left running. */
const IN_FLIGHT_MAX = 1000;
const UNREADABLE = 'Unable to read message. (#4.3.0)';
const ROOT_REFUSED = 'Not allowed to perform deliveries as root.';

const deferral = (text: string): LocalResult => ({ result: 'deferral', report: `${text}\n` });

const field = (o: Record<string, unknown>, k: string): string | undefined => {
  const v = o[k];
  return typeof v === 'string' && v.length <= FIELD_MAX && !v.includes('\0') ? v : undefined;
};

/** A well-formed request, or why it is not one. Nothing from the child is used before this has passed. */
export function parseRequest(x: unknown): LspawnRequest | string {
  if (typeof x !== 'object' || x === null) return 'not an object';
  const o = x as Record<string, unknown>;
  const msg = field(o, 'msg');
  const local = field(o, 'local');
  const domain = field(o, 'domain');
  const sender = field(o, 'sender');
  if (msg === undefined || !isQueueId(msg)) return 'msg is not a queue id';
  if (local === undefined || local === '') return 'local is not a local part';
  if (domain === undefined) return 'domain is not a string';
  if (sender === undefined) return 'sender is not a string';
  return { msg, local, domain, sender };
}

/**
 * Runs in the root parent. Each request is checked, its assignment looked up again in users/cdb and passwd (the
 * child's lookup is not trusted: a home or a defaultdelivery chosen by the child would let it run programs as any
 * user), the message opened without following links and accepted only as a regular file of the queue's account,
 * and then delivered by LocalDeliverer as the mailbox's uid. A uid that is not the queue's own gets a private
 * copy made from that descriptor, so no path named by the child is ever read as root.
 */
export class Lspawn {
  private readonly deliverer: LocalDeliverer;
  private readonly passwd: PasswdSource;
  /** qmail-start's argument: read once, at start, like the scheduler's settings. */
  private readonly defaultDelivery: string;
  private inFlight = 0;
  private spoolDir: Promise<string> | undefined;
  private spoolSeq = 0;
  private closed = false;

  constructor(private readonly o: LspawnOptions) {
    const control = new Control(o.root);
    this.deliverer =
      o.deliverer ?? localDeliverer({ copyUnreadable: false, workersPerUid: control.number('localworkers').value });
    this.passwd = o.passwd ?? systemPasswd({ root: o.root });
    this.defaultDelivery = control.raw('defaultdelivery') ?? './Maildir/\n';
  }

  /** Delivery worker processes per (uid, gid) now (control/localworkers). */
  get workersPerUid(): number {
    return this.deliverer.workersPerUid;
  }

  /**
   * What the send child needs to deliver its own account's mail itself (send-child.ts OwnDeliveries): qmail-start's
   * argument as read here at start, and whether one process per uid is the setting (then the send child is that one
   * process; with more, the deliveries go to the workers here, which run in parallel).
   */
  get ownDelivery(): OwnDelivery {
    return { defaultDelivery: this.defaultDelivery, inProcess: this.workersPerUid === 1 };
  }

  /**
   * SIGHUP: control/localworkers again (the number of delivery workers per uid). Unreadable (a directory, a link
   * loop): a warning, and the number in use is kept, as the scheduler keeps its settings.
   */
  reload(): void {
    let n: number;
    try {
      n = new Control(this.o.root).number('localworkers').value;
    } catch (err) {
      if (!(err instanceof ControlReadError)) throw err;
      this.o.log.event('quail.warning', {
        file: 'control/localworkers',
        why: `unreadable (${errText(err)}): ${this.workersPerUid} delivery workers per uid kept`,
      });
      return;
    }
    this.deliverer.setWorkersPerUid(n);
  }

  /** One request from the send child; never throws. */
  async deliver(raw: unknown): Promise<LocalResult> {
    const req = parseRequest(raw);
    if (typeof req === 'string') return this.refuse(req);
    if (this.closed) return deferral('Local delivery is shutting down. (#4.3.0)');
    if (this.inFlight >= IN_FLIGHT_MAX)
      return deferral(`Too many local deliveries at once (${IN_FLIGHT_MAX}). (#4.3.0)`);
    this.inFlight++;
    try {
      return await this.run(req);
    } catch (err) {
      return deferral(`Unexpected error in qmail-lspawn: ${errText(err)}. (#4.3.0)`);
    } finally {
      this.inFlight--;
    }
  }

  /** Stops the delivery workers (after their jobs) and removes the private copies. */
  async close(): Promise<void> {
    this.closed = true;
    await this.deliverer.close();
    const dir = await this.spoolDir?.catch(() => undefined);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }

  private refuse(why: string): LocalResult {
    this.o.log.event('lspawn.refused', { reason: why });
    return deferral(`qmail-lspawn refused the request: ${why}. (#4.3.0)`);
  }

  private async run(req: LspawnRequest): Promise<LocalResult> {
    let a: Assignment;
    try {
      a = lookupAssignment({ root: this.o.root, local: req.local, passwd: this.passwd });
    } catch (err) {
      const out = outcomeFromError(err);
      return {
        result: out.kind === 'permanent' ? 'failure' : 'deferral',
        report: out.report.endsWith('\n') ? out.report : `${out.report}\n`,
      };
    }
    // C.3.5: never as root, whichever way the account was found (lookupAssignment refuses it too).
    if (a.uid === 0) return deferral(ROOT_REFUSED);
    const path = join(this.o.root, 'queue', 'mess', req.msg);
    let fd: number;
    try {
      // O_NONBLOCK: a FIFO put there must not hang the root process; O_NOFOLLOW: no link out of the queue.
      // open, fstat and close are synchronous: per delivery they cost less than through the thread pool
      // (docs/PERFORMANCE.md); only the private copy (large messages) reads and writes asynchronously.
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP')
        return this.refuse(`queue/mess/${req.msg} is a symbolic link`);
      return deferral(UNREADABLE);
    }
    let copy: string | undefined;
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.uid !== this.o.queueUid) {
        return this.refuse(`queue/mess/${req.msg} is not a regular file of uid ${this.o.queueUid}`);
      }
      // The queue's own account opens the file itself (it owns it); any other uid gets a copy only it can read.
      if (a.uid !== st.uid) copy = await this.spool(fd, a.uid, a.gid);
    } catch {
      return deferral(UNREADABLE);
    } finally {
      closeSync(fd);
    }
    const job: LocalJob = {
      user: a.user,
      uid: a.uid,
      gid: a.gid,
      home: a.home,
      local: req.local,
      dash: a.dash,
      ext: a.ext,
      domain: req.domain,
      sender: req.sender,
      defaultDelivery: this.defaultDelivery,
      messagePath: copy ?? path,
      root: this.o.root,
    };
    try {
      return await this.deliverer.deliver(job);
    } finally {
      if (copy !== undefined) await unlink(copy).catch(() => undefined);
    }
  }

  /** A 0400 copy owned by uid/gid in a root-owned 0711 directory, written from the checked descriptor. */
  private async spool(fd: number, uid: number, gid: number): Promise<string> {
    this.spoolDir ??= (async () => {
      const d = await mkdtemp(join(tmpdir(), 'quail-lspawn-'));
      await chmod(d, 0o711);
      return d;
    })();
    const dst = join(await this.spoolDir, `${process.pid}.${++this.spoolSeq}`);
    const out = openSync(dst, 'wx', 0o400);
    try {
      fchownSync(out, uid, gid);
      await copyFrom(fd, out);
    } catch (err) {
      closeSync(out);
      await unlink(dst).catch(() => undefined);
      throw err;
    }
    closeSync(out);
    return dst;
  }
}

/** Copies the whole file behind `from` (from offset 0) to `to`, a chunk at a time (never the whole message in memory). */
const readFd = promisify(read);
const writeFd = promisify(write);

async function copyFrom(from: number, to: number): Promise<void> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (let pos = 0; ;) {
    const { bytesRead } = await readFd(from, buf, 0, buf.length, pos);
    if (bytesRead === 0) return;
    for (let done = 0; done < bytesRead;) done += (await writeFd(to, buf, done, bytesRead - done, null)).bytesWritten;
    pos += bytesRead;
  }
}
