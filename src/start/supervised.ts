// One child process of the root supervisor: forked as root only to load its code (it drops to the account itself),
// started through a handshake, replaced when it dies. The one restart mechanism of the service children
// (privchild.ts: SMTP, POP3) and the send child (send.ts).
import { fork, type ChildProcess, type SendHandle } from 'node:child_process';
import { errText, QuailError } from '../core/index.js';
import type { EventLog } from './log.js';

/** The account network input is served as (control/quailuser). */
export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** The tail of the child's stderr kept for the crash event (the stack of an uncaught exception). */
const STDERR_TAIL = 16 * 1024;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

export interface SupervisedOptions<From> {
  /** Event prefix of the process: `<name>.error` when a replacement cannot be started. */
  readonly name: 'smtpd' | 'pop3d' | 'metricsd' | 'webd' | 'odmrd' | 'sendd';
  /** For error texts: `SMTP`, `POP3`, `send`. */
  readonly what: string;
  readonly script: URL | string;
  /** After the root, uid and gid every child gets. */
  readonly args?: readonly string[];
  readonly root: string;
  readonly account: Account;
  readonly log: EventLog;
  /** A new child's start-up (it may already send messages): resolves when it runs; rejecting kills it. */
  handshake(child: ChildProcess): Promise<void>;
  /** Every message of every child, from its fork on (the handshake listens for its own besides). */
  onMessage(child: ChildProcess, m: From): void;
  /** A child ran its handshake: it is the running one now (first start and every restart). */
  onRunning(child: ChildProcess): void;
  /** Any exit of any child, before the crash handling (connections it had not acknowledged go back...). */
  onExit?(child: ChildProcess): void;
  /** The running child died: the delay before its replacement, from how long it ran and the last delay. */
  crashDelay(ranMs: number, lastMs: number): number;
  /** The running child died (not at stop): log it. `count` is the deaths so far, `stderr` its stderr's tail. */
  onCrash(child: ChildProcess, d: CrashInfo): void;
}

export interface CrashInfo {
  readonly code: number | null;
  readonly signal: string | null;
  readonly count: number;
  readonly stderr: string;
  readonly delayMs: number;
}

/**
 * Waits for message `want` from `child` (after sending `send`, if given); a `fatal` message, an exit or `timeoutMs`
 * of silence is an error (a fatal is permanent unless `fatalTemporary`).
 */
export function awaitMessage(
  child: ChildProcess,
  want: string,
  opts: { send?: object; handle?: object; timeoutMs?: number; fatalTemporary?: boolean } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => done(new Error(`no answer within ${(opts.timeoutMs ?? 0) / 1000} s`)), opts.timeoutMs)
        : undefined;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(
        new Error(
          `it exited (${signal ?? `code ${code ?? '?'}`}) first; can the account read the program and the mail root?`,
        ),
      );
    const onMsg = (m: { readonly type?: unknown; readonly error?: unknown }): void => {
      if (m.type === 'fatal') done(new QuailError(String(m.error), opts.fatalTemporary === true));
      else if (m.type === want) done();
    };
    child.on('message', onMsg);
    child.on('exit', onExit);
    // a handle (a bound socket: src/tcpserver's bindShared) goes with the message; Node sends such a handle as is
    if (opts.send) child.send(opts.send, opts.handle as SendHandle);
  });
}

/**
 * Forks the child; a child that ran its handshake and died is replaced after `crashDelay`; one that cannot start is
 * tried again after 0.5 s, doubling up to 30 s while it keeps failing. The first start's failure is thrown instead.
 */
export class Supervised<From> {
  /** The child forked last (perhaps still in its handshake). */
  private current: ChildProcess | undefined;
  /** The child that ran its handshake. */
  private up: ChildProcess | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = RESTART_MIN_MS;
  private startedAt = 0;
  private deaths = 0;

  constructor(private readonly o: SupervisedOptions<From>) {}

  /** The running child (handshake done), if any. */
  get running(): ChildProcess | undefined {
    return this.up;
  }

  /** The child forked last, running or starting. */
  get child(): ChildProcess | undefined {
    return this.current;
  }

  /** Deaths of a running child so far. */
  get crashes(): number {
    return this.deaths;
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Forks a child and runs its handshake; a failure kills it and is thrown. */
  async launch(): Promise<void> {
    const { uid, gid, name } = this.o.account;
    // Forked as root only to load its code; it drops to the account before it opens anything or touches a socket.
    const child = fork(this.o.script, [this.o.root, String(uid), String(gid), ...(this.o.args ?? [])], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.current = child;
    let tail = '';
    child.stderr?.on('data', (c: Buffer) => {
      process.stderr.write(c);
      tail = (tail + c.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.on('message', (m: From) => this.o.onMessage(child, m));
    // A send to a child that has just died (EPIPE) is an 'error' event: unhandled, it would end the root process.
    // The exit that follows replaces the child; what was sent is asked again (a delivery) or not needed.
    child.on('error', (err) => this.o.log.event(`${this.o.name}.error`, { pid: child.pid ?? 0, error: errText(err) }));
    child.once('exit', (code, signal) => this.onExit(child, code, signal, () => tail));
    try {
      await this.o.handshake(child);
    } catch (err) {
      child.kill('SIGKILL');
      if (this.current === child) this.current = undefined;
      throw new QuailError(
        `the ${this.o.what} process (account ${name}, uid ${uid}) did not start: ${errText(err)}`,
        err instanceof QuailError ? err.temporary : true,
      );
    }
    if (this.stopping) return;
    this.up = child;
    this.startedAt = Date.now();
    this.o.onRunning(child);
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null, stderr: () => string): void {
    if (this.current === child) this.current = undefined;
    const wasUp = this.up === child;
    if (wasUp) this.up = undefined;
    this.o.onExit?.(child);
    if (this.stopping || !wasUp) return; // a child that never ran: launch() reports it
    this.deaths++;
    this.delayMs = this.o.crashDelay(Date.now() - this.startedAt, this.delayMs);
    this.o.onCrash(child, { code, signal, count: this.deaths, stderr: stderr().trim(), delayMs: this.delayMs });
    this.restart(this.delayMs);
  }

  private restart(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopping) return;
      this.launch().catch((err: unknown) => {
        if (this.stopping) return;
        this.delayMs = Math.min(Math.max(this.delayMs * 2, RESTART_MIN_MS), RESTART_MAX_MS);
        this.o.log.event(`${this.o.name}.error`, { error: errText(err), restart_in_ms: this.delayMs });
        this.restart(this.delayMs);
      });
    }, delayMs);
  }

  /**
   * Stops replacing children; the current one is told to stop (`tell`, given whether it ran its handshake) and
   * waited for, killed after `killAfterMs` if given.
   */
  async stop(tell: (child: ChildProcess, running: boolean) => void, killAfterMs?: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.current;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    tell(child, child === this.up);
    const kill = killAfterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
    await exited;
    clearTimeout(kill);
  }
}
