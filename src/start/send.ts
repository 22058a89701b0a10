// As root: qmail-send in an unprivileged child (scheduler, remote delivery, bounces), qmail-lspawn kept in the root parent.
import type { ChildProcess } from 'node:child_process';
import { QuailError, TurnBatch, unbatch, type BatchMessage } from '../core/index.js';
import { GroupEndings, ProgramGroups, type LocalResult, type ProgramNote } from '../local/index.js';
import type { CrashReport } from './child-common.js';
import { Lspawn, type LspawnRequest, type OwnDelivery } from './lspawn.js';
import { relayBatch, type LogsMessage } from './log-batch.js';
import { relayEvent, type EventLog } from './log.js';
import { awaitMessage, Supervised, type Account } from './supervised.js';

/** Parent → send child. */
export type ToSend =
  | { readonly type: 'start'; readonly own: OwnDelivery }
  | { readonly type: 'own'; readonly own: OwnDelivery }
  | { readonly type: 'delivered'; readonly id: number; readonly result: LocalResult }
  | { readonly type: 'trigger'; readonly id?: string }
  | { readonly type: 'reload' }
  | { readonly type: 'flush' }
  | { readonly type: 'stop' };

/** Send child → parent. A `deliver` is qmail-send's request to qmail-lspawn; nothing else is asked of root. */
export type FromSend =
  | { readonly type: 'ready'; readonly uid: number; readonly gid: number }
  | { readonly type: 'started' }
  | { readonly type: 'fatal'; readonly error: string }
  | { readonly type: 'log'; readonly event: string; readonly fields: Record<string, unknown> }
  | LogsMessage
  | { readonly type: 'deliver'; readonly id: number; readonly request: LspawnRequest }
  | ProgramNote
  | CrashReport;

export interface SendChildOptions {
  readonly root: string;
  readonly account: Account;
  readonly log: EventLog;
  readonly mxPort?: number;
  /** A restarted child runs: its pid, for quail.json (the first one is known when open() returns). */
  readonly onRunning: (pid: number) => void;
  /** The child died: it is restarting (after its back-off) until onRunning. */
  readonly onCrash?: () => void;
  /** The script run as the child (default: send-child.js beside this file). */
  readonly script?: string;
}

const CHILD_SCRIPT = new URL('./send-child.js', import.meta.url);

/**
 * Forks the send child, which drops to `account` before it opens the queue; answers its local delivery requests
 * with Lspawn (as root); restarts it when it dies (0.5 s, doubling up to 30 s while it keeps dying). The parent
 * never opens the queue or a connection to another server.
 */
/**
 * Whether `waiting`, a message not yet sent this turn, makes the trigger `m` needless. A wake-up without an id covers
 * every trigger (the scheduler then scans the whole queue); one naming a message covers only that message, since the
 * scheduler reads only the messages it is told of (src/scheduler: a `new` wake-up with an id).
 */
export function coversTrigger(waiting: ToSend, m: ToSend & { readonly type: 'trigger' }): boolean {
  return waiting.type === 'trigger' && (waiting.id === undefined || waiting.id === m.id);
}

export class SendChild {
  readonly lspawn: Lspawn;
  /** The child process, its handshake and its replacement (supervised.ts). */
  private readonly proc: Supervised<FromSend>;
  /** The scheduler is to run (start() was called): a restarted child starts it in its handshake. */
  private wanted = false;
  /** Children that said `ready` (they listen for messages from then on) and the crash each reported. */
  private readonly said = new WeakSet<ChildProcess>();
  private readonly crashOf = new WeakMap<ChildProcess, string>();
  private restartCount = 0;
  /** Since the running child died, until its replacement runs: when it died and the back-off before the next fork. */
  private down: { readonly since: string; readonly backoffMs: number } | undefined;
  private readonly turns = new WeakMap<ChildProcess, TurnBatch<ToSend>>();
  /** The program groups each child said run (its own account's deliveries): ended when it dies (src/local groups.ts). */
  private readonly programs = new WeakMap<ChildProcess, ProgramGroups>();
  /** The ending of dead children's program groups, until done: stop() waits for them too. */
  private readonly endings = new GroupEndings();

  constructor(private readonly o: SendChildOptions) {
    this.lspawn = new Lspawn({ root: o.root, queueUid: o.account.uid, log: o.log });
    const { uid, name } = o.account;
    this.proc = new Supervised<FromSend>({
      name: 'sendd',
      what: 'send',
      script: o.script ?? CHILD_SCRIPT,
      args: [String(o.mxPort ?? '')],
      root: o.root,
      account: o.account,
      log: o.log,
      // ready (queue opened and recovered as the account); a replacement starts its scheduler too
      handshake: async (child) => {
        await awaitMessage(child, 'ready', { fatalTemporary: true });
        if (this.wanted) await awaitMessage(child, 'started', { send: this.startMessage(), fatalTemporary: true });
      },
      // the child sends its delivery requests and log events of one turn as one `batch` (send-child.ts)
      onMessage: (child, raw) =>
        unbatch(raw, (item) => {
          if (!this.programsOf(child).take(item)) this.onChildMessage(child, item as FromSend);
        }),
      // killed (SIGKILL, the OOM killer), the child could not end its programs: root does, before they act again
      onExit: (child) => {
        this.endings.gone(this.programsOf(child));
      },
      onRunning: (child) => {
        this.down = undefined;
        this.o.log.event('sendd.started', { pid: child.pid ?? 0, user: name, uid, restarts: this.restartCount });
        if (this.restartCount > 0) this.o.onRunning(child.pid ?? 0);
      },
      // 0.5 s, doubling up to 30 s while it keeps dying; a child that ran a minute starts the count again
      crashDelay: (ranMs, lastMs) => (ranMs > 60_000 ? 500 : Math.min(lastMs * 2, 30_000)),
      onCrash: (child, d) => {
        this.restartCount = d.count;
        const error = this.crashOf.get(child);
        this.o.log.event('sendd.crashed', {
          pid: child.pid ?? 0,
          code: d.code ?? '',
          signal: d.signal ?? '',
          restarts: d.count,
          restart_in_ms: d.delayMs,
          ...(error !== undefined ? { error } : {}),
        });
        this.down = { since: new Date().toISOString(), backoffMs: d.delayMs };
        this.o.onCrash?.();
      },
    });
  }

  /** The running child's pid; undefined while it is restarting (the last one forked may be dead: `restarting`). */
  get pid(): number | undefined {
    return this.down === undefined ? this.proc.child?.pid : undefined;
  }

  /** While the child is being replaced: when the last one died and the back-off before the next fork. */
  get restarting(): { readonly since: string; readonly backoffMs: number } | undefined {
    return this.down;
  }

  /** How many times the child died and was started again. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Forks the child; resolves once it runs as the account with the queue opened and recovered. */
  async open(): Promise<void> {
    await this.proc.launch();
  }

  /** Starts the scheduler in the child (once the listeners are up, as in one process). */
  async start(): Promise<void> {
    this.wanted = true;
    const child = this.proc.child;
    if (!child) throw new QuailError('the send process is not running', true);
    await awaitMessage(child, 'started', { send: this.startMessage(), fatalTemporary: true });
  }

  /** `start`, with what the child needs to deliver as its own account itself (lspawn.ts ownDelivery). */
  private startMessage(): ToSend {
    return { type: 'start', own: this.lspawn.ownDelivery };
  }

  /** A message was queued (by the SMTP child): wake the scheduler, naming the message when its id is known. */
  trigger(id?: string): void {
    this.tell(id === undefined ? { type: 'trigger' } : { type: 'trigger', id });
  }

  /**
   * SIGHUP: the scheduler re-reads locals and virtualdomains; lspawn control/localworkers, and the child hears whether it
   * now delivers its own account's mail itself (one worker per uid) or asks root for those too.
   */
  reload(): void {
    this.lspawn.reload();
    this.tell({ type: 'own', own: this.lspawn.ownDelivery });
    this.tell({ type: 'reload' });
  }

  /** SIGALRM: retry every deferred recipient now. */
  flush(): void {
    this.tell({ type: 'flush' });
  }

  /** SIGTERM: the child stops its scheduler (deliveries in progress finish and are recorded), then exits. */
  async stop(): Promise<void> {
    await this.proc.stop((child) => {
      // Still opening the queue (a restart under way): it runs no scheduler yet and would not hear `stop`.
      if (!this.said.has(child)) child.kill('SIGKILL');
      // Not connected: it has noticed and is stopping by itself (send-child.ts).
      else if (child.connected) {
        this.turns.get(child)?.flush();
        child.send({ type: 'stop' } satisfies ToSend);
      }
    });
    await this.endings.settled();
  }

  private programsOf(child: ChildProcess): ProgramGroups {
    let p = this.programs.get(child);
    if (p === undefined) {
      p = new ProgramGroups(this.o.account.uid);
      this.programs.set(child, p);
    }
    return p;
  }

  private onChildMessage(child: ChildProcess, m: FromSend): void {
    // The child's events are logged as they come, but only under a catalogued name (no line breaks into root's log).
    if (m.type === 'log') relayEvent(this.o.log, m.event, m.fields);
    else if (m.type === 'logs') relayBatch(m, (name, fields) => relayEvent(this.o.log, name, fields));
    else if (m.type === 'ready') this.said.add(child);
    else if (m.type === 'deliver') this.deliver(child, m.id, m.request);
    else if (m.type === 'crash') {
      this.crashOf.set(child, m.error);
      this.o.log.event('sendd.error', { pid: child.pid ?? 0, error: m.error, stack: m.stack });
    }
  }

  /**
   * Answers and wake-ups for `child` leave at the end of the event-loop turn as one message (src/core/turn-batch.ts);
   * one batch per child process, so a restarted child never gets its predecessor's answers.
   */
  private turnOf(child: ChildProcess): TurnBatch<ToSend> {
    let t = this.turns.get(child);
    if (t === undefined) {
      t = new TurnBatch<ToSend>((m: ToSend | BatchMessage<ToSend>) => {
        if (child.connected) child.send(m);
      });
      this.turns.set(child, t);
    }
    return t;
  }

  private tell(m: ToSend): void {
    const child = this.proc.child;
    if (!child?.connected) return;
    const turn = this.turnOf(child);
    if (m.type === 'trigger') {
      if (!turn.waiting((x) => coversTrigger(x, m))) turn.send(m);
      return;
    }
    turn.flush();
    child.send(m);
  }

  /** qmail-lspawn: Lspawn checks the request; the answer goes to the child that asked, if it still runs. */
  private deliver(child: ChildProcess, id: unknown, request: unknown): void {
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
      this.o.log.event('lspawn.refused', { reason: 'request without a numeric id' });
      return;
    }
    void this.lspawn.deliver(request).then((result) => {
      if (child.connected) this.turnOf(child).send({ type: 'delivered', id, result });
    });
  }
}
