// POP3 as root: the listeners are bound here and served by a child running as control/quailuser (pop3-child.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { QuailError } from '../address/index.js';
import type { Pop3ListenerSpec } from '../pop3d/index.js';
import type { EventLog } from './log.js';
import type { BoundPop3 } from './pop3.js';
import type { Account } from './privsep.js';

/** Parent → child (a `listen` carries the bound net.Server, an `adopt` a paused socket). */
export type ToPop3Child =
  | { readonly type: 'listen'; readonly index: number; readonly spec: Pop3ListenerSpec }
  | { readonly type: 'adopt'; readonly index: number }
  | { readonly type: 'reload' }
  | { readonly type: 'stop'; readonly graceMs: number };

/** Child → parent. */
export type FromPop3Child =
  | { readonly type: 'ready' }
  | { readonly type: 'fatal'; readonly error: string }
  | { readonly type: 'listening'; readonly index: number }
  | { readonly type: 'login'; readonly login: string; readonly at: string }
  | { readonly type: 'log'; readonly event: string; readonly fields: Record<string, unknown> };

export interface Pop3ChildOptions {
  readonly root: string;
  readonly specs: readonly Pop3ListenerSpec[];
  /** The specs are the embedded default: one that cannot be bound is skipped. */
  readonly embedded: boolean;
  readonly account: Account;
  readonly log: EventLog;
  /** A login the child accepted (the parent records the last-login time; the child's directory is read-only). */
  readonly onLogin: (login: string, at: Date) => Promise<void>;
}

const CHILD_SCRIPT = new URL('./pop3-child.js', import.meta.url);
const READY_MS = 30_000;
const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const closeServer = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

function bind(spec: { host: string; port: number }, onConn: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = createServer({ pauseOnConnect: true }, onConn);
    srv.once('error', reject);
    srv.listen(spec.port, spec.host, () => {
      srv.off('error', reject);
      resolve(srv);
    });
  });
}

/** The POP3 child: started, restarted after a growing delay when it dies, stopped with the supervisor. */
export class Pop3Child {
  private child: ChildProcess | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private delayMs = 500;
  private startedAt = 0;
  private bound: Array<BoundPop3 & { spec: Pop3ListenerSpec }> = [];

  constructor(private readonly o: Pop3ChildOptions) {}

  async start(): Promise<readonly BoundPop3[]> {
    const servers: Server[] = [];
    const specs: Pop3ListenerSpec[] = [];
    const pending: Array<[number, Socket]> = [];
    for (const spec of this.o.specs) {
      try {
        const index = servers.length;
        servers.push(await bind(spec, (s) => pending.push([index, s])));
        specs.push(spec);
      } catch (err) {
        if (this.o.embedded) {
          this.o.log.event('pop3.error', { listener: `${spec.host}:${spec.port}`, error: `not opened: ${errText(err)}` });
          continue;
        }
        await Promise.all(servers.map(closeServer));
        throw new QuailError(`cannot listen on ${spec.host}:${spec.port} (pop3): ${errText(err)}; change control/listeners or --pop3`, true);
      }
    }
    this.bound = servers.map((s, i) => {
      const a = s.address();
      const spec = specs[i] as Pop3ListenerSpec;
      const port = typeof a === 'object' && a !== null ? a.port : spec.port;
      return { host: spec.host, port, implicitTls: spec.implicitTls, spec: { ...spec, port } };
    });
    await this.launch(servers, pending);
    for (const b of this.bound) {
      this.o.log.event('pop3.listening', { address: b.host, port: b.port, tls: b.implicitTls ? 'implicit' : 'stls', user: this.o.account.name });
    }
    return this.bound.map(({ host, port, implicitTls }) => ({ host, port, implicitTls }));
  }

  private async launch(servers: readonly Server[], pending: Array<[number, Socket]>): Promise<void> {
    const { uid, gid, name } = this.o.account;
    // Forked as root only to load its code; it drops to the account before serving (pop3-child.ts).
    const child = fork(CHILD_SCRIPT, [this.o.root, String(uid), String(gid)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    this.child = child;
    try {
      await this.handshake(child, servers);
    } catch (err) {
      child.kill('SIGKILL');
      await Promise.all(servers.map(closeServer));
      for (const [, s] of pending) s.destroy();
      throw new QuailError(`the POP3 process (account ${name}, uid ${uid}) did not start: ${errText(err)}`, err instanceof QuailError ? err.temporary : true);
    }
    await Promise.all(servers.map(closeServer)); // the child holds the listening sockets now
    for (const [i, s] of pending) child.send({ type: 'adopt', index: i } satisfies ToPop3Child, s);
    this.startedAt = Date.now();
    child.on('message', (m: FromPop3Child) => this.onMessage(m));
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    this.o.log.event('pop3d.started', { pid: child.pid ?? 0, user: name, uid });
  }

  private handshake(child: ChildProcess, servers: readonly Server[]): Promise<void> {
    return new Promise((resolve, reject) => {
      let acked = 0;
      const timer = setTimeout(() => done(new Error('no answer within 30 s')), READY_MS);
      const done = (err?: Error): void => {
        clearTimeout(timer);
        child.off('message', onMsg);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve();
      };
      const onExit = (code: number | null, signal: string | null): void =>
        done(new Error(`it exited (${signal ?? `code ${code ?? '?'}`}) before serving; can the account read the program and the mail root?`));
      const onMsg = (m: FromPop3Child): void => {
        if (m.type === 'log') this.onMessage(m);
        else if (m.type === 'fatal') done(new QuailError(m.error, false));
        else if (m.type === 'ready') {
          for (const [i, srv] of servers.entries()) {
            child.send({ type: 'listen', index: i, spec: (this.bound[i] as { spec: Pop3ListenerSpec }).spec } satisfies ToPop3Child, srv);
          }
          if (servers.length === 0) done();
        } else if (m.type === 'listening' && ++acked === servers.length) done();
      };
      child.on('message', onMsg);
      child.on('exit', onExit);
    });
  }

  private onMessage(m: FromPop3Child): void {
    if (m.type === 'log') this.o.log.event(m.event, m.fields);
    else if (m.type === 'login') void this.o.onLogin(m.login, new Date(m.at));
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.child === child) this.child = undefined;
    if (this.stopping) return;
    this.delayMs = Date.now() - this.startedAt > 60_000 ? 500 : Math.min(this.delayMs * 2, 30_000);
    this.o.log.event('pop3d.died', { pid: child.pid ?? 0, code: code ?? '', signal: signal ?? '', restart_in_ms: this.delayMs });
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopping) return;
      void this.relaunch().catch((err: unknown) => {
        this.delayMs = Math.min(this.delayMs * 2, 30_000);
        this.o.log.event('pop3d.error', { error: errText(err), restart_in_ms: this.delayMs });
        this.scheduleRestart();
      });
    }, this.delayMs);
  }

  /** The same concrete ports again, bound anew as root. */
  private async relaunch(): Promise<void> {
    const servers: Server[] = [];
    const pending: Array<[number, Socket]> = [];
    try {
      for (const [i, b] of this.bound.entries()) servers.push(await bind(b.spec, (s) => pending.push([i, s])));
    } catch (err) {
      await Promise.all(servers.map(closeServer));
      throw err;
    }
    await this.launch(servers, pending);
  }

  reload(): void {
    if (this.child?.connected) this.child.send({ type: 'reload' } satisfies ToPop3Child);
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    if (child.connected) child.send({ type: 'stop', graceMs } satisfies ToPop3Child);
    else child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 5000);
    await exited;
    clearTimeout(kill);
  }
}
