// One privilege-separated service child (SMTP, POP3): root keeps the listening sockets, the child serves connections.
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { errText, QuailError } from '../core/index.js';
import { relayBatch, type LogsMessage } from './log-batch.js';
import { relayEvent, type EventLog } from './log.js';

/** The account network input is served as (control/quailuser). */
export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** What every listener spec has; the rest of the spec travels to the child as JSON. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parent → child. `adopt` carries one accepted, paused, unread socket. */
export type ToServiceChild<Spec> =
  | { readonly type: 'serve'; readonly listeners: readonly Spec[] }
  | { readonly type: 'adopt'; readonly index: number; readonly id: number }
  | { readonly type: 'reload' }
  | { readonly type: 'stop'; readonly graceMs: number };

/** Child → parent: the lifecycle messages every service child sends; `other` are the service's own. */
export type FromServiceChild<Other> =
  | { readonly type: 'ready'; readonly uid: number; readonly gid: number }
  | { readonly type: 'fatal'; readonly error: string }
  | { readonly type: 'serving' }
  /** The child holds its own descriptor of handed-over connection `id`: the parent closes its copy. */
  | { readonly type: 'adopted'; readonly id: number }
  | { readonly type: 'log'; readonly event: string; readonly fields: Record<string, unknown> }
  | LogsMessage
  | Other;

export interface ServiceChildOptions<Spec extends HostPort, Other> {
  /** Event prefix of the process (`smtpd.started`, ...) and the child's name in messages. */
  readonly name: 'smtpd' | 'pop3d';
  /** What the service is, for error texts: `SMTP`, `POP3`. */
  readonly what: string;
  readonly script: URL | string;
  readonly root: string;
  readonly account: Account;
  readonly log: EventLog;
  /** The listeners to bind as root. */
  readonly specs: readonly Spec[];
  /** A listener that cannot be bound is logged and skipped (the embedded default) instead of failing the start. */
  readonly optional?: boolean;
  /** What a connection is told when no child takes it in time (undefined: it is only closed, e.g. implicit TLS). */
  readonly busyReply: (spec: Spec) => string | undefined;
  /** The service's own messages (a login, a queued message). */
  readonly onMessage?: (m: Other) => void;
  /** A child serves the listeners now: its pid. */
  readonly onServing?: (pid: number) => void;
  /** A child died unexpectedly: how many times so far. */
  readonly onCrash?: (crashes: number) => void;
}

const READY_MS = 30_000;
/** The messages of the start-up handshake; every other message is the running child's. */
const HANDSHAKE: ReadonlySet<string> = new Set(['ready', 'fatal', 'serving']);
/** Messages about the child itself, never the service's own (which go to onMessage). */
const LIFECYCLE: ReadonlySet<string> = new Set([...HANDSHAKE, 'adopted', 'log', 'logs']);
/** A connection waits this long for a (re)starting child before it is told to come back later. */
const HOLD_MS = 15_000;
/** At most this many connections wait; more are told to come back later at once. */
const MAX_PENDING = 1000;
/** The tail of the child's stderr kept for the crash event (the stack of an uncaught exception). */
const STDERR_TAIL = 16 * 1024;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

/** The service a process runs: its listeners' events are the service's (`pop3.error`), as without privilege separation. */
const SERVICE = { smtpd: 'smtp', pop3d: 'pop3' } as const;

function bind(spec: HostPort, onConn: (s: Socket) => void, onError: (err: Error) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Paused: the root process accepts but never reads; the socket is handed to the child unread.
    const srv = createServer({ pauseOnConnect: true, allowHalfOpen: true }, onConn);
    srv.once('error', reject);
    srv.listen(spec.port, spec.host, () => {
      srv.off('error', reject);
      // A failed accept (out of descriptors: EMFILE) is an 'error' on the server; it keeps listening. Unhandled,
      // it would end the root process.
      srv.on('error', onError);
      resolve(srv);
    });
  });
}

interface Waiting {
  readonly index: number;
  readonly socket: Socket;
  readonly since: number;
}

/**
 * Binds the listeners as root and keeps them for the whole run; forks the child, which drops to `account` and
 * serves each accepted connection the parent passes it (`adopt`). The ports never close while a child is
 * replaced: connections that arrive meanwhile wait (paused, unread) for the next child, and are told to come back
 * later if none takes them within 15 s. A child that dies after it served is replaced at once (a crash is one
 * session's doing, not a reason to keep the port dark); one that cannot start is retried after a growing delay.
 */
export class ServiceChild<Spec extends HostPort, Other extends { readonly type: string }> {
  private child: ChildProcess | undefined;
  /** The child that has taken the listeners (connections go to it). */
  private serving: ChildProcess | undefined;
  private stopping = false;
  private timer: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private delayMs = RESTART_MIN_MS;
  private servers: Server[] = [];
  private specsBound: Spec[] = [];
  private waiting: Waiting[] = [];
  /** Connections sent to the serving child and not yet acknowledged: still ours if it dies first. */
  private inFlight = new Map<number, Waiting>();
  private nextId = 1;
  private crashCount = 0;

  constructor(private readonly o: ServiceChildOptions<Spec, Other>) {}

  /** The listeners with their concrete ports. */
  get listeners(): readonly Spec[] {
    return this.specsBound;
  }

  get pid(): number | undefined {
    return this.serving?.pid;
  }

  get crashes(): number {
    return this.crashCount;
  }

  /** First start: binds, forks, waits until the child serves. Any failure is thrown (the caller refuses to start). */
  async start(): Promise<readonly Spec[]> {
    for (const spec of this.o.specs) {
      const index = this.servers.length;
      try {
        this.servers.push(
          await bind(
            spec,
            (s) => this.onConnection(index, s),
            (err) => {
              this.o.log.event(`${this.o.name}.error`, {
                listener: `${spec.host}:${spec.port}`,
                error: `accept failed: ${errText(err)}`,
              });
            },
          ),
        );
      } catch (err) {
        if (this.o.optional) {
          this.o.log.event(`${SERVICE[this.o.name]}.error`, {
            listener: `${spec.host}:${spec.port}`,
            error: `not opened: ${errText(err)}`,
          });
          continue;
        }
        await this.closeServers();
        throw new QuailError(
          `cannot listen on ${spec.host}:${spec.port} (${this.o.what}): ${errText(err)}; change control/listeners or the command-line flags`,
          true,
        );
      }
      const a = this.servers[index]?.address();
      this.specsBound.push({ ...spec, port: typeof a === 'object' && a !== null ? a.port : spec.port });
    }
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    try {
      await this.launch();
    } catch (err) {
      await this.closeServers();
      throw err;
    }
    return this.specsBound;
  }

  private onConnection(index: number, socket: Socket): void {
    socket.on('error', () => undefined); // a reset while it waits; the child installs its own
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const child = this.serving;
    if (child?.connected) this.handOver(child, index, socket);
    else if (this.waiting.length >= MAX_PENDING) this.turnAway(index, socket);
    else this.waiting.push({ index, socket, since: Date.now() });
  }

  /**
   * Sends a copy of the descriptor (keepOpen) and keeps ours until the child says it has its own: a connection in
   * flight when the child dies is then still ours and goes to the next child instead of hanging for good.
   */
  private handOver(child: ChildProcess, index: number, socket: Socket, since = Date.now()): void {
    const id = this.nextId++;
    this.inFlight.set(id, { index, socket, since });
    const back = (): void => {
      if (this.inFlight.delete(id) && !socket.destroyed) this.waiting.push({ index, socket, since });
    };
    try {
      child.send({ type: 'adopt', index, id } satisfies ToServiceChild<Spec>, socket, { keepOpen: true }, (err) => {
        if (err) back();
      });
    } catch {
      back();
    }
  }

  private adopted(id: number): void {
    const w = this.inFlight.get(id);
    this.inFlight.delete(id);
    // Only our descriptor closes (no FIN, no reset): the child's copy keeps the connection.
    w?.socket.destroy();
  }

  private turnAway(index: number, socket: Socket): void {
    const spec = this.specsBound[index];
    const text = spec ? this.o.busyReply(spec) : undefined;
    this.o.log.event(`${this.o.name}.busy`, {
      listener: spec ? `${spec.host}:${spec.port}` : '',
      ip: socket.remoteAddress ?? '',
    });
    if (text === undefined) {
      socket.destroy();
      return;
    }
    // Read and drop what the client sends so closing does not reset the reply away; cut after 10 s.
    socket.resume();
    socket.end(text);
    setTimeout(() => socket.destroy(), 10_000).unref();
  }

  /** Connections waited too long for a child: told to come back later. */
  private sweep(): void {
    const now = Date.now();
    const keep: Waiting[] = [];
    for (const w of this.waiting) {
      if (w.socket.destroyed) continue;
      if (now - w.since >= HOLD_MS) this.turnAway(w.index, w.socket);
      else keep.push(w);
    }
    this.waiting = keep;
  }

  private flushWaiting(child: ChildProcess): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) if (!w.socket.destroyed) this.handOver(child, w.index, w.socket, w.since);
  }

  private async launch(): Promise<void> {
    const { uid, gid, name } = this.o.account;
    // Forked as root only to load its code; it drops to the account before it opens anything or touches a socket.
    const child = fork(this.o.script, [this.o.root, String(uid), String(gid)], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.child = child;
    let tail = '';
    child.stderr?.on('data', (c: Buffer) => {
      process.stderr.write(c);
      tail = (tail + c.toString('utf8')).slice(-STDERR_TAIL);
    });
    child.once('exit', (code, signal) => this.onExit(child, code, signal, () => tail));
    try {
      await this.handshake(child);
    } catch (err) {
      child.kill('SIGKILL');
      throw new QuailError(
        `the ${this.o.what} process (account ${name}, uid ${uid}) did not start: ${errText(err)}`,
        err instanceof QuailError ? err.temporary : true,
      );
    }
    if (this.stopping) return;
    child.on('message', (m: FromServiceChild<Other>) => this.onMessage(m));
    this.serving = child;
    this.o.log.event(`${this.o.name}.started`, {
      pid: child.pid ?? 0,
      user: name,
      uid,
      listeners: this.specsBound.map((b) => `${b.host}:${b.port}`).join(','),
    });
    this.o.onServing?.(child.pid ?? 0);
    this.flushWaiting(child);
  }

  /** ready → serve → serving; a fatal message, an exit or 30 s of silence is an error. */
  private handshake(child: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no answer within ${READY_MS / 1000} s`)), READY_MS);
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
            `it exited (${signal ?? `code ${code ?? '?'}`}) before serving; can the account read the program and the mail root?`,
          ),
        );
      const onMsg = (m: FromServiceChild<Other>): void => {
        if (!HANDSHAKE.has(m.type)) this.onMessage(m);
        else if (m.type === 'fatal' && 'error' in m) done(new QuailError(String(m.error), false));
        else if (m.type === 'ready')
          child.send({ type: 'serve', listeners: this.specsBound } satisfies ToServiceChild<Spec>);
        else if (m.type === 'serving') done();
      };
      child.on('message', onMsg);
      child.on('exit', onExit);
    });
  }

  private onMessage(m: FromServiceChild<Other>): void {
    if (m.type === 'adopted' && 'id' in m) this.adopted(Number(m.id));
    else if (m.type === 'log' && 'event' in m && 'fields' in m) relayEvent(this.o.log, m.event, m.fields);
    else if (m.type === 'logs' && 'events' in m) relayBatch(m, (name, fields) => relayEvent(this.o.log, name, fields));
    else if (!LIFECYCLE.has(m.type)) this.o.onMessage?.(m as Other);
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null, stderr: () => string): void {
    if (this.child === child) this.child = undefined;
    const wasServing = this.serving === child;
    if (wasServing) this.serving = undefined;
    // Connections it never acknowledged are still ours: they wait for the next child.
    for (const [id, w] of this.inFlight) {
      this.inFlight.delete(id);
      if (!w.socket.destroyed) this.waiting.push(w);
    }
    if (this.stopping || !wasServing) return; // a child that never served: launch() reports it
    this.crashCount++;
    // A child that served and died is replaced at once: whatever killed it was one session's doing.
    this.delayMs = RESTART_MIN_MS;
    const stack = stderr().trim();
    this.o.log.event(`${this.o.name}.crashed`, {
      pid: child.pid ?? 0,
      code: code ?? '',
      signal: signal ?? '',
      crashes: this.crashCount,
      ...(stack !== '' ? { stack } : {}),
      restart_in_ms: 0,
    });
    this.o.onCrash?.(this.crashCount);
    this.restart(0);
  }

  private restart(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopping) return;
      this.launch().catch((err: unknown) => {
        this.delayMs = Math.min(this.delayMs * 2, RESTART_MAX_MS);
        this.o.log.event(`${this.o.name}.error`, { error: errText(err), restart_in_ms: this.delayMs });
        this.restart(this.delayMs);
      });
    }, delayMs);
  }

  /** SIGHUP: the child re-reads what it caches (the certificate). */
  reload(): void {
    if (this.serving?.connected) this.serving.send({ type: 'reload' } satisfies ToServiceChild<Spec>);
  }

  /** SIGTERM: close the ports, the child lets sessions finish for graceMs and exits; killed if it takes 5 s longer. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    clearInterval(this.sweeper);
    for (const w of [...this.waiting, ...this.inFlight.values()]) w.socket.destroy();
    this.waiting = [];
    this.inFlight.clear();
    const closed = this.closeServers();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      if (child.connected) child.send({ type: 'stop', graceMs } satisfies ToServiceChild<Spec>);
      else child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), graceMs + 5000);
      await exited;
      clearTimeout(kill);
    }
    await closed;
  }

  private async closeServers(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    // Handed-over sockets are the child's: a parent's server has no connections of its own to wait for.
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
