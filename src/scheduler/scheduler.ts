// qmail-send: routes new messages once, runs due deliveries within the concurrency limits, retries, bounces.
import { asciiLower, type Channel } from '../core/index.js';
import type { QueueId } from '../queue/types.js';
import { attemptDelivery, CHANNEL_TABLE, concurrencyFrom } from './channels.js';
import type { DeliveryContext } from './deliver.js';
import { DueIndex, type DueRef } from './due.js';
import { finishMessage } from './finish.js';
import { isDying, nextRetry, TOO_LONG } from './retry.js';
import { routeNew } from './routing.js';
import { Lanes, type Lane } from './lanes.js';
import { namedQueues, queueSettings, reloadedRoute, settingsFrom, type SchedulerSettings } from './settings.js';
import { flushNow, isComplete, messageState, type MessageState } from './state.js';
import { afterAttempt, endsDelivered, type Task } from './task.js';
import type { SchedulerDeps, SchedulerEventName, SchedulerTimers } from './types.js';

/** qmail-send's periodic scan of the queue (the trigger is lossy), and its back-off after queue errors. */
const SCAN_INTERVAL = 1500;
const SYSFAIL_BACKOFF = 123;
/** New messages read and routed at once during a scan. */
const SCAN_PARALLEL = 64;
const MAX_TIMER_MS = 2 ** 31 - 1;

const REAL_TIMERS: SchedulerTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class Scheduler {
  private settings: SchedulerSettings | undefined;
  private readonly timers: SchedulerTimers;
  private readonly msgs = new Map<QueueId, MessageState>();
  /** Recipients by next attempt time, and complete messages by finish time: an event touches only what is due. */
  private readonly due = new DueIndex(this.msgs);
  private admitted = 0;
  /** Removed (or being removed) by us; skipped by scans until the queue no longer lists them. */
  private readonly finished = new Set<QueueId>();
  private readonly heldIds = new Set<QueueId>();
  /** Waiting tasks and running deliveries per queue and channel: each queue has its own slots (lanes.ts). */
  private readonly lanes = new Lanes();
  private readonly active = new Set<Promise<void>>();
  private needScan = true;
  /** New messages named by their injector (noteNew): read directly, without a listing of env/, unless a scan is due. */
  private noted = new Set<QueueId>();
  private nextScanAt = 0;
  private flushAll = false;
  private readonly flushDomains = new Set<string>();
  private cycleChain: Promise<void> = Promise.resolve();
  /** The cycle queued behind the running one: later wake-ups join it instead of queueing more passes. */
  private queuedCycle: Promise<void> | undefined;
  private wakePending = false;
  private timer: unknown = undefined;
  private unwatch: (() => void) | undefined;
  private started = false;
  private stopping = false;
  private deliveryNo = 0;
  private qpNo = 0;

  constructor(private readonly deps: SchedulerDeps) {
    this.timers = deps.timers ?? REAL_TIMERS;
  }

  /** Reads the controls (throws, like qmail-send refusing to start, when they cannot be read), then scans. */
  async start(): Promise<void> {
    if (this.started) return;
    try {
      const control = this.deps.control();
      this.settings = settingsFrom(control, concurrencyFrom(control));
    } catch (err) {
      this.emit('alert', { reason: String(err) });
      throw err;
    }
    this.started = true;
    this.stopping = false;
    // `flush <domain>` (quail queue flush --domain, and ETRN, AutoTURN and quail held flush for a held domain)
    // retries only that domain's recipients: a customer's session must not retry the whole queue
    // A 'new' that names its message is read by id (noteNew); any other wake-up scans.
    this.unwatch = this.deps.queue.watch((what, domain, id) => {
      if (what === 'flush') this.flush(domain);
      else if (id !== undefined) this.noteNew(id);
      else {
        this.needScan = true;
        this.wake();
      }
    });
    await this.cycle();
  }

  /** Stops taking up work and waits for the deliveries in progress (their results are recorded). */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.stopping = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.clearTimer();
    for (const lane of this.lanes.all()) {
      for (const t of lane.waiting) {
        t.msg.inFlight.delete(t.index);
        this.due.recipient(t.msg, t.index);
      }
      lane.waiting = [];
    }
    while (this.active.size > 0) await Promise.all([...this.active]);
    await this.cycleChain;
    this.started = false;
  }

  /**
   * SIGHUP: re-read locals and virtualdomains (0.1) and the named queues' policies and rules (control/queues,
   * control/queuerules); the default queue's other settings need a restart, as with qmail.
   */
  reload(): void {
    const s = this.settings;
    if (s === undefined) return;
    try {
      const control = this.deps.control();
      const named = namedQueues(control, s);
      this.settings = { ...s, route: reloadedRoute(s.route, control), ...named };
      // A bad line is left out and the rest applies; `quail start` refuses such files, a reload only warns.
      for (const e of named.rules.errors)
        this.emit('warning', { reason: `control/${e.file} line ${e.line}: ${e.reason} (line ignored)` });
      this.emit('reload', {});
    } catch (err) {
      this.emit('warning', { reason: String(err) });
    }
  }

  /**
   * A message just committed, named by a wake-up (quail start's SMTP processes, through root and the send child's
   * FileQueue.wakeWatchers): the next pass reads
   * its envelope without listing the whole of env/. Wake-ups without an id still scan, and so does every pass
   * SCAN_INTERVAL after the last scan: a note that is lost, or that names a message already known, costs nothing.
   */
  private noteNew(id: QueueId): void {
    this.noted.add(id);
    this.wake();
  }

  /** SIGALRM: try every deferred recipient now (only those in `domain`, when given); also rescans. */
  flush(domain?: string): void {
    if (domain === undefined) this.flushAll = true;
    else this.flushDomains.add(asciiLower(domain));
    this.needScan = true;
    this.heldIds.clear();
    this.wake();
  }

  /** Runs one scheduling pass now with the current clock (tests advance a fake clock, then tick). */
  tick(): Promise<void> {
    return this.cycle();
  }

  /** Resolves when nothing runs and every message is finished or waiting for a retry in the future. */
  async runUntilIdle(): Promise<void> {
    this.needScan = true; // the queue directory is the truth; wake-ups are lossy and may still be on their way
    for (;;) {
      await this.cycle();
      if (this.active.size > 0) {
        await Promise.race([...this.active]);
        continue;
      }
      if (this.stopping || !this.started || !this.hasDueWork(this.deps.clock())) return;
    }
  }

  private emit(name: SchedulerEventName, fields: Record<string, string | number>): void {
    this.deps.logger.event(name, fields);
  }

  private get ctx(): DeliveryContext {
    const settings = this.settings;
    if (settings === undefined) throw new Error('scheduler not started');
    return {
      deps: this.deps,
      settings,
      nextQp: () => ++this.qpNo,
      queued: () => {
        this.needScan = true;
        this.wake();
      },
    };
  }

  private wake(): void {
    if (this.wakePending || this.stopping) return;
    this.wakePending = true;
    setImmediate(() => {
      this.wakePending = false;
      this.cycle().catch((err: unknown) => this.emit('warning', { reason: String(err) }));
    });
  }

  private cycle(): Promise<void> {
    if (this.queuedCycle !== undefined) return this.queuedCycle;
    const p = this.cycleChain.then(() => {
      this.queuedCycle = undefined;
      return this.cycleOnce();
    });
    this.queuedCycle = p;
    this.cycleChain = p.catch(() => undefined);
    return p;
  }

  private async cycleOnce(): Promise<void> {
    if (!this.started || this.stopping) return;
    let now = this.deps.clock();
    // What is known and due starts before the scan: routing a burst of new messages must not idle free slots.
    this.runDue(now);
    if (this.needScan || now >= this.nextScanAt) {
      await this.scan(now);
      if (this.stopping) return;
      now = this.deps.clock();
      this.runDue(now);
    } else if (this.noted.size > 0) {
      const ids = [...this.noted].sort();
      this.noted = new Set();
      await this.admitAll(ids, now);
      if (this.stopping) return;
      now = this.deps.clock();
      this.runDue(now);
    }
    this.armTimer(now);
  }

  private runDue(now: number): void {
    this.applyFlush(now);
    for (const msg of this.due.takeFinishes(now)) this.startFinish(msg);
    this.takeUp(this.due.takeRecipients(now), now);
    this.dispatch();
  }

  /**
   * Takes up the due recipients, in queue order then recipient order; a message's channel is one pass of
   * qmail's (one retry time for all its due recipients).
   */
  private takeUp(refs: DueRef[], now: number): void {
    if (refs.length === 0) return;
    const settings = this.ctx.settings;
    refs.sort((a, b) => a.msg.seq - b.msg.seq || a.index - b.index);
    let pass:
      | { msg: MessageState; retry: Partial<Record<Channel, number>>; dying: boolean; own?: readonly number[] }
      | undefined;
    for (const { msg, index } of refs) {
      const r = msg.recipients[index];
      const channel = r?.channel;
      if (r === undefined || channel === undefined || msg.inFlight.has(index)) continue;
      if (pass?.msg !== msg) {
        const q = queueSettings(settings, msg.queueName);
        pass = { msg, retry: {}, dying: isDying(msg.birth, now, q.lifetime), ...(q.retry ? { own: q.retry } : {}) };
      }
      // A queue's own schedule (retry=S1,S2..): the wait after this recipient's next deferral; else qmail's (F.2).
      const own = pass.own;
      const retry = (pass.retry[channel] ??=
        own === undefined
          ? nextRetry(msg.birth, now, CHANNEL_TABLE[channel].skip)
          : now + (own[Math.min(r.attempts, own.length - 1)] ?? 0));
      msg.inFlight.add(index);
      this.lanes.lane(msg.queueName, channel).waiting.push({ msg, index, channel, retry, dying: pass.dying });
    }
  }

  /** A message enters the scheduler: its recipients (or its finish, when complete) are filed by time. */
  private hold(st: MessageState): void {
    st.seq = ++this.admitted;
    this.msgs.set(st.id, st);
    this.due.message(st);
  }

  private async scan(now: number): Promise<void> {
    this.needScan = false;
    this.nextScanAt = now + SCAN_INTERVAL;
    // Every noted message was committed before it was noted, so the listing below shows it.
    this.noted = new Set();
    let ids: QueueId[];
    try {
      ids = await this.deps.queue.ids();
    } catch (err) {
      this.nextScanAt = now + SYSFAIL_BACKOFF;
      this.emit('warning', { reason: String(err) });
      return;
    }
    const listed = new Set(ids);
    for (const id of this.finished) if (!listed.has(id)) this.finished.delete(id);
    await this.admitAll(ids, now);
  }

  /** Reads and routes the messages of `ids` (in queue order) not yet known; each is held as soon as those before it are. */
  private async admitAll(ids: readonly QueueId[], now: number): Promise<void> {
    const fresh = ids.filter((id) => !this.msgs.has(id) && !this.finished.has(id) && !this.heldIds.has(id));
    // Read and route new messages in parallel: each routing is a durable envelope rewrite, and the queue groups
    // the fsyncs of concurrent rewrites; one at a time, a burst of arrivals would wait for one fsync per message.
    // Admitted in queue order (oldest first), whatever order the reads finish in.
    // Each leading run of admitted messages is held and started at once: deliveries need not wait for a big burst.
    const admitted: Array<{ st: MessageState | undefined }> = [];
    let next = 0;
    let held = 0;
    const reader = async (): Promise<void> => {
      for (let i = next++; i < fresh.length; i = next++) {
        admitted[i] = { st: await this.admit(fresh[i] as QueueId, now) };
        const before = held;
        for (let a = admitted[held]; a !== undefined; a = admitted[++held]) if (a.st !== undefined) this.hold(a.st);
        if (held > before && !this.stopping) this.runDue(this.deps.clock());
      }
    };
    await Promise.all(Array.from({ length: Math.min(SCAN_PARALLEL, fresh.length) }, reader));
  }

  /** Reads one message not yet known to this scheduler and routes it if new; undefined when gone, held or unreadable. */
  private async admit(id: QueueId, now: number): Promise<MessageState | undefined> {
    try {
      const m = await this.deps.queue.read(id);
      if (m === undefined) return undefined;
      if (m.held) {
        this.heldIds.add(id);
        return undefined;
      }
      const st = messageState(m);
      if (!this.ctx.settings.queues.has(st.queueName))
        this.emit('warning', {
          msg: id,
          reason: `queue ${st.queueName} is not in control/queues: delivered with the default queue's policy`,
        });
      // Not yet taken up: a recipient without a channel, or no recipient at all (qmail-queue accepts an envelope
      // without one; qmail-send still logs its new and info lines before its end: loc-981).
      if (st.recipients.length === 0 || st.recipients.some((r) => r.channel === undefined))
        routeNew(this.ctx.settings.route, st, (n, f) => this.emit(n, f), this.deps.offices);
      return st;
    } catch (err) {
      this.nextScanAt = Math.min(this.nextScanAt, now + SYSFAIL_BACKOFF);
      this.emit('warning', { msg: id, reason: String(err) });
      return undefined;
    }
  }

  private applyFlush(now: number): void {
    if (!this.flushAll && this.flushDomains.size === 0) return;
    const all = this.flushAll;
    const domains = new Set(this.flushDomains);
    for (const msg of this.msgs.values()) {
      for (const i of flushNow(msg, now, (d) => all || domains.has(d))) this.due.recipient(msg, i);
    }
    this.flushAll = false;
    this.flushDomains.clear();
  }

  private track(p: Promise<void>): void {
    const tracked = p.finally(() => this.active.delete(tracked));
    this.active.add(tracked);
  }

  /** The lane's concurrency limit: its queue's, else control/concurrencylocal or concurrencyremote (F.8). */
  private limit(lane: Lane): number {
    return queueSettings(this.ctx.settings, lane.queue).concurrency[lane.channel];
  }

  private dispatch(): void {
    for (const lane of this.lanes.all()) {
      if (lane.waiting.length === 0) continue;
      const limit = this.limit(lane);
      while (lane.running < limit) {
        const task = lane.waiting.shift();
        if (task === undefined) break;
        lane.running++;
        this.track(this.runTask(task));
      }
    }
  }

  private async runTask(t: Task): Promise<void> {
    const { msg, index, channel } = t;
    const lane = this.lanes.lane(msg.queueName, channel);
    let holdsSlot = true;
    // The delivery is over once its result is in: its slot goes to the next task while the state is written.
    const freeSlot = (): void => {
      if (!holdsSlot) return;
      holdsSlot = false;
      lane.running--;
      if (!this.stopping) this.dispatch();
    };
    try {
      const cur = msg.recipients[index];
      if (cur === undefined) return;
      const address = cur.address ?? cur.original;
      const n = ++this.deliveryNo;
      this.emit('start', { delivery: n, msg: msg.id, channel, to: address });
      let a = await attemptDelivery(this.ctx, msg, channel, address);
      if (a.result === 'deferral' && t.dying) a = { ...a, result: 'failure', report: a.report + TOO_LONG };
      this.emit('delivery', {
        delivery: n,
        msg: msg.id,
        result: a.result,
        report: a.report,
        ...(a.code !== undefined ? { code: a.code } : {}),
      });
      const next = afterAttempt(msg.recipients[index] ?? cur, a, t.retry);
      msg.recipients = msg.recipients.map((r, i) => (i === index ? next : r));
      freeSlot();
      // Still in flight until recorded: nothing takes this recipient up again meanwhile.
      if (endsDelivered(msg, index)) msg.unsaved = true;
      else await this.persist(msg);
    } catch (err) {
      this.emit('warning', { msg: msg.id, reason: String(err) });
    } finally {
      freeSlot();
      msg.inFlight.delete(index);
      this.due.recipient(msg, index);
      // Complete: bounce and removal start now, inside this tracked task, so stop() waits for them too.
      if (isComplete(msg) && !msg.finishing && msg.finishAfter <= this.deps.clock()) this.startFinish(msg);
      else this.due.finish(msg);
      this.wake();
    }
  }

  /** Writes the latest recipient states; writes of one message never overlap. */
  private persist(msg: MessageState): Promise<void> {
    const snapshot = msg.recipients;
    const p = msg.writes.then(() => this.deps.queue.updateRecipients(msg.id, snapshot));
    msg.writes = p.catch(() => undefined);
    return p;
  }

  private startFinish(msg: MessageState): void {
    msg.finishing = true;
    const run = async (): Promise<void> => {
      try {
        await msg.writes;
        this.finished.add(msg.id);
        await finishMessage(this.ctx, msg, this.deps.clock());
        this.msgs.delete(msg.id);
      } catch (err) {
        this.finished.delete(msg.id);
        // The removal failed: write the states after all, so a restart does not repeat the deliveries.
        if (msg.unsaved)
          await this.persist(msg).then(
            () => (msg.unsaved = false),
            () => undefined,
          );
        msg.finishAfter = this.deps.clock() + SYSFAIL_BACKOFF;
        this.due.finish(msg);
        this.emit('warning', { msg: msg.id, reason: String(err) });
      } finally {
        msg.finishing = false;
        this.wake();
      }
    };
    this.track(run());
  }

  private hasDueWork(now: number): boolean {
    if (this.needScan || now >= this.nextScanAt || this.flushAll || this.flushDomains.size > 0) return true;
    if (this.lanes.anyStartable((lane) => this.limit(lane))) return true;
    return this.due.next() <= now;
  }

  /** Earliest future moment with work: a retry, a finish after back-off, or the periodic scan. */
  private armTimer(now: number): void {
    this.clearTimer();
    if (this.stopping) return;
    const next = Math.min(this.nextScanAt, this.due.next());
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil((next - now) * 1000) + 50));
    this.timer = this.timers.set(() => {
      this.timer = undefined;
      this.wake();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
  }
}
