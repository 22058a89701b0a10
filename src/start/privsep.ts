// Privilege separation: root binds the listeners, an unprivileged child process serves them (DESIGN.md privileges).
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { QuailError } from '../address/index.js';
import type { ListenerKind, ListenerSpec } from '../smtpd/index.js';
import type { EventLog } from './log.js';

/** The account network input is served as (control/quailuser). */
export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Parent → child messages (a `listen` carries the bound net.Server, an `adopt` a paused socket). */
export type ToChild =
  | { readonly type: 'listen'; readonly index: number; readonly spec: ListenerSpec }
  | { readonly type: 'adopt'; readonly index: number }
  | { readonly type: 'reload' }
  | { readonly type: 'stop'; readonly graceMs: number };

/** Child → parent messages. */
export type FromChild =
  | { readonly type: 'ready'; readonly uid: number; readonly gid: number }
  | { readonly type: 'fatal'; readonly error: string }
  | { readonly type: 'listening'; readonly index: number }
  | { readonly type: 'log'; readonly event: string; readonly fields: Record<string, unknown> };

export interface BoundListener {
  readonly host: string;
  readonly port: number;
  readonly kind: ListenerKind;
}

export interface SmtpChildOptions {
  readonly root: string;
  readonly specs: readonly ListenerSpec[];
  readonly account: Account;
  readonly log: EventLog;
  /** A message was queued by the child (the parent wakes its scheduler). */
  readonly onQueued: () => void;
  /** A (re)started child serves the listeners: its pid, for quail.json. */
  readonly onServing: (pid: number) => void;
  /** The script run as the child (default: smtpd-child.js beside this file). */
  readonly script?: string;
}

const CHILD_SCRIPT = new URL('./smtpd-child.js', import.meta.url);
const READY_MS = 30_000;

function bind(spec: { host: string; port: number }, onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Connections accepted here (only between bind and the child's takeover) are never read: they are handed on.
    const srv = createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConn);
    srv.once('error', reject);
    srv.listen(spec.port, spec.host, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

const closeServer = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

/**
 * Binds every listener as the current (root) process, forks the SMTP child as `account`, passes it the bound
 * servers and then closes its own copies: from then on only the child accepts and reads network input. If the
 * child dies it is started again (the ports are bound anew, as root) after a growing delay.
 */
export class SmtpChild {
  private child: ChildProcess | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = 500;
  private startedAt = 0;
  private bound: BoundListener[] = [];

  constructor(private readonly o: SmtpChildOptions) {}

  get listeners(): readonly BoundListener[] {
    return this.bound;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** First start: any failure is thrown (the caller refuses to start). */
  async start(): Promise<readonly BoundListener[]> {
    await this.launch(this.o.specs);
    return this.bound;
  }

  private async launch(specs: readonly ListenerSpec[]): Promise<void> {
    const pending: Array<[number, Socket]> = [];
    const servers: Server[] = [];
    try {
      for (const [i, spec] of specs.entries()) servers.push(await bind(spec, (s) => pending.push([i, s])));
    } catch (err) {
      await Promise.all(servers.map(closeServer));
      throw new QuailError(`cannot listen: ${err instanceof Error ? err.message : String(err)}; change control/listeners or --smtp/--submission`, true);
    }
    const bound = servers.map((s, i) => {
      const a = s.address();
      const spec = specs[i] as ListenerSpec;
      return typeof a === 'object' && a !== null ? { host: a.address, port: a.port, kind: spec.kind } : { host: spec.host, port: spec.port, kind: spec.kind };
    });
    const { uid, gid, name } = this.o.account;
    // The child starts as root only to load its code (wherever the program lives), then drops to the account
    // before it opens the queue or touches a socket (smtpd-child.ts); it never reads network input as root.
    const child = fork(this.o.script ?? CHILD_SCRIPT, [this.o.root, String(uid), String(gid)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.child = child;
    try {
      await this.handshake(child, servers, specs);
    } catch (err) {
      child.kill('SIGKILL');
      await Promise.all(servers.map(closeServer));
      for (const [, s] of pending) s.destroy();
      throw new QuailError(`the SMTP process (account ${name}, uid ${uid}) did not start: ${err instanceof Error ? err.message : String(err)}`, err instanceof QuailError ? err.temporary : true);
    }
    // The child holds the listening sockets now; the parent keeps no network input.
    await Promise.all(servers.map(closeServer));
    for (const [i, s] of pending) child.send({ type: 'adopt', index: i } satisfies ToChild, s);
    this.bound = bound;
    this.startedAt = Date.now();
    child.on('message', (m: FromChild) => this.onMessage(m));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    this.o.log.event('smtpd.started', { pid: child.pid ?? 0, user: name, uid, listeners: bound.map((b) => `${b.host}:${b.port}`).join(',') });
    this.o.onServing(child.pid ?? 0);
  }

  /** ready → one listen per server, each acknowledged; a fatal message or an early exit is an error. */
  private handshake(child: ChildProcess, servers: readonly Server[], specs: readonly ListenerSpec[]): Promise<void> {
    return new Promise((resolve, reject) => {
      let acked = 0;
      const timer = setTimeout(() => fail(new Error('no answer within 30 s')), READY_MS);
      const cleanup = (): void => {
        clearTimeout(timer);
        child.off('message', onMsg);
        child.off('exit', onExit);
      };
      const fail = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number | null, signal: string | null): void =>
        fail(new Error(`it exited (${signal ?? `code ${code ?? '?'}`}) before serving; can the account read the program and the mail root?`));
      const onMsg = (m: FromChild): void => {
        if (m.type === 'log') this.onMessage(m);
        else if (m.type === 'fatal') fail(new QuailError(m.error, false));
        else if (m.type === 'ready') {
          for (const [i, srv] of servers.entries()) child.send({ type: 'listen', index: i, spec: specs[i] as ListenerSpec } satisfies ToChild, srv);
          if (servers.length === 0) {
            cleanup();
            resolve();
          }
        } else if (m.type === 'listening' && ++acked === servers.length) {
          cleanup();
          resolve();
        }
      };
      child.on('message', onMsg);
      child.on('exit', onExit);
    });
  }

  private onMessage(m: FromChild): void {
    if (m.type !== 'log') return;
    this.o.log.event(m.event, m.fields);
    if (m.event === 'smtp.queued') this.o.onQueued();
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.child === child) this.child = undefined;
    if (this.stopping) return;
    // A child that lived a minute restarts quickly; one that keeps dying waits longer each time (max 30 s).
    this.delayMs = Date.now() - this.startedAt > 60_000 ? 500 : Math.min(this.delayMs * 2, 30_000);
    this.o.log.event('smtpd.died', { pid: child.pid ?? 0, code: code ?? '', signal: signal ?? '', restart_in_ms: this.delayMs });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopping) return;
      // the same concrete ports again (a configured port 0 keeps the port it got first)
      const specs = this.o.specs.map((s, i) => ({ ...s, port: this.bound[i]?.port ?? s.port }));
      this.launch(specs).catch((err: unknown) => {
        this.delayMs = Math.min(this.delayMs * 2, 30_000);
        this.o.log.event('smtpd.error', { error: err instanceof Error ? err.message : String(err), restart_in_ms: this.delayMs });
        this.scheduleRestart();
      });
    }, this.delayMs);
  }

  /** SIGHUP: the child re-reads servercert.pem (sessions read their control files per connection anyway). */
  reload(): void {
    if (this.child?.connected) this.child.send({ type: 'reload' } satisfies ToChild);
  }

  /** SIGTERM: the child stops accepting, lets sessions finish for graceMs, exits; killed if it takes longer. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if (!child.connected) child.kill('SIGTERM');
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.connected) child.send({ type: 'stop', graceMs } satisfies ToChild);
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 5000);
    await exited;
    clearTimeout(kill);
  }
}
