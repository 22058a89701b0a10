// As root: qmail-send in an unprivileged child (scheduler, remote delivery, bounces), qmail-lspawn kept in the root parent.
import { fork, type ChildProcess } from 'node:child_process';
import { errText, QuailError } from '../core/index.js';
import type { LocalResult } from '../local/index.js';
import type { CrashReport } from './child-common.js';
import { Lspawn, type LspawnRequest } from './lspawn.js';
import { relayBatch, type LogsMessage } from './log-batch.js';
import { relayEvent, type EventLog } from './log.js';
import type { Account } from './privsep.js';

/** Parent → send child. */
export type ToSend =
  | { readonly type: 'start' }
  | { readonly type: 'delivered'; readonly id: number; readonly result: LocalResult }
  | { readonly type: 'trigger' }
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
  | CrashReport;

export interface SendChildOptions {
  readonly root: string;
  readonly account: Account;
  readonly log: EventLog;
  readonly mxPort?: number;
  /** A restarted child runs: its pid, for quail.json (the first one is known when open() returns). */
  readonly onRunning: (pid: number) => void;
  /** The script run as the child (default: send-child.js beside this file). */
  readonly script?: string;
}

const CHILD_SCRIPT = new URL('./send-child.js', import.meta.url);

/**
 * Forks the send child, which drops to `account` before it opens the queue; answers its local delivery requests
 * with Lspawn (as root); restarts it when it dies (0.5 s, doubling up to 30 s while it keeps dying). The parent
 * never opens the queue or a connection to another server.
 */
export class SendChild {
  readonly lspawn: Lspawn;
  private child: ChildProcess | undefined;
  /** The child that said `ready` (it listens for messages only from then on). */
  private ready: ChildProcess | undefined;
  private stopping = false;
  /** The scheduler is to run (start() was called): a restarted child starts it at once. */
  private wanted = false;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = 500;
  private startedAt = 0;
  private restartCount = 0;

  constructor(private readonly o: SendChildOptions) {
    this.lspawn = new Lspawn({ root: o.root, queueUid: o.account.uid, log: o.log });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** How many times the child died and was started again. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Forks the child; resolves once it runs as the account with the queue opened and recovered. */
  async open(): Promise<void> {
    await this.launch();
  }

  /** Starts the scheduler in the child (once the listeners are up, as in one process). */
  async start(): Promise<void> {
    this.wanted = true;
    const child = this.child;
    if (!child) throw new QuailError('the send process is not running', true);
    await this.ask(child, { type: 'start' }, 'started');
  }

  /** A message was queued (by the SMTP child): wake the scheduler. */
  trigger(): void {
    this.tell({ type: 'trigger' });
  }

  /** SIGHUP: the scheduler re-reads locals and virtualdomains. */
  reload(): void {
    this.tell({ type: 'reload' });
  }

  /** SIGALRM: retry every deferred recipient now. */
  flush(): void {
    this.tell({ type: 'flush' });
  }

  /** SIGTERM: the child stops its scheduler (deliveries in progress finish and are recorded), then exits. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // Still opening the queue (a restart under way): it runs no scheduler yet and would not hear `stop`.
    if (child !== this.ready) child.kill('SIGKILL');
    // Not connected: it has noticed and is stopping by itself (send-child.ts).
    else if (child.connected) child.send({ type: 'stop' } satisfies ToSend);
    await exited;
  }

  private tell(m: ToSend): void {
    if (this.child?.connected) this.child.send(m);
  }

  private async launch(): Promise<void> {
    const { uid, gid, name } = this.o.account;
    // Started as root only to load its code; it drops to the account before it opens anything (send-child.ts).
    const child = fork(
      this.o.script ?? CHILD_SCRIPT,
      [this.o.root, String(uid), String(gid), String(this.o.mxPort ?? '')],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'json',
      },
    );
    this.child = child;
    let crash: { error: string; stack: string } | undefined;
    child.on('message', (m: FromSend) => {
      // The child's events are logged as they come, but only under a catalogued name (no line breaks into root's log).
      if (m.type === 'log') relayEvent(this.o.log, m.event, m.fields);
      else if (m.type === 'logs') relayBatch(m, (name, fields) => relayEvent(this.o.log, name, fields));
      else if (m.type === 'deliver') this.deliver(child, m.id, m.request);
      else if (m.type === 'crash') {
        crash = { error: m.error, stack: m.stack };
        this.o.log.event('sendd.error', { pid: child.pid ?? 0, error: m.error, stack: m.stack });
      }
    });
    try {
      await this.ask(child, undefined, 'ready');
    } catch (err) {
      child.kill('SIGKILL');
      throw new QuailError(
        `the send process (account ${name}, uid ${uid}) did not start: ${errText(err)}`,
        err instanceof QuailError ? err.temporary : true,
      );
    }
    this.ready = child;
    this.startedAt = Date.now();
    child.once('exit', (code, signal) => this.onExit(child, code, signal, crash));
    this.o.log.event('sendd.started', { pid: child.pid ?? 0, user: name, uid, restarts: this.restartCount });
    if (this.restartCount > 0) this.o.onRunning(child.pid ?? 0);
  }

  /** Sends `m` (if any) and waits for the answer `want`; a fatal message or an exit first is an error. */
  private ask(child: ChildProcess, m: ToSend | undefined, want: 'ready' | 'started'): Promise<void> {
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        child.off('message', onMsg);
        child.off('exit', onExit);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(
          new Error(
            `it exited (${signal ?? `code ${code ?? '?'}`}) first; can the account read the program and the mail root?`,
          ),
        );
      };
      const onMsg = (r: FromSend): void => {
        if (r.type === 'fatal') {
          cleanup();
          reject(new QuailError(r.error, true));
        } else if (r.type === want) {
          cleanup();
          resolve();
        }
      };
      child.on('message', onMsg);
      child.on('exit', onExit);
      if (m) child.send(m);
    });
  }

  /** qmail-lspawn: Lspawn checks the request; the answer goes to the child that asked, if it still runs. */
  private deliver(child: ChildProcess, id: unknown, request: unknown): void {
    if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
      this.o.log.event('lspawn.refused', { reason: 'request without a numeric id' });
      return;
    }
    void this.lspawn.deliver(request).then((result) => {
      if (child.connected) child.send({ type: 'delivered', id, result } satisfies ToSend);
    });
  }

  private onExit(
    child: ChildProcess,
    code: number | null,
    signal: string | null,
    crash: { error: string } | undefined,
  ): void {
    // Not the current child (one dropped after a failed restart) or stopping: nothing to do.
    if (this.child !== child || this.stopping) {
      if (this.child === child) this.child = undefined;
      return;
    }
    this.child = undefined;
    this.restartCount++;
    this.delayMs = Date.now() - this.startedAt > 60_000 ? 500 : Math.min(this.delayMs * 2, 30_000);
    this.o.log.event('sendd.crashed', {
      pid: child.pid ?? 0,
      code: code ?? '',
      signal: signal ?? '',
      restarts: this.restartCount,
      restart_in_ms: this.delayMs,
      ...(crash ? { error: crash.error } : {}),
    });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopping) return;
      void (async () => {
        try {
          await this.launch();
          const child = this.child;
          if (this.wanted && child && !this.stopping) await this.ask(child, { type: 'start' }, 'started');
        } catch (err) {
          if (this.stopping) return;
          this.delayMs = Math.min(this.delayMs * 2, 30_000);
          this.o.log.event('sendd.error', { error: errText(err), restart_in_ms: this.delayMs });
          // A child that started but could not start its scheduler is still there: it must go before the next one.
          this.child?.kill('SIGKILL');
          this.child = undefined;
          this.scheduleRestart();
        }
      })();
    }, this.delayMs);
  }
}
