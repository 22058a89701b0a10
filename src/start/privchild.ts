// One privilege-separated service child (SMTP, POP3): root keeps the listening sockets, the child serves connections.
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { errText, QuailError } from '../core/index.js';
import { relayBatch, type LogsMessage } from './log-batch.js';
import { relayEvent, type EventLog } from './log.js';
import { awaitMessage, Supervised, type Account } from './supervised.js';

/** The processes that serve listeners (as root each runs as control/quailuser); `<name>.started` and so on. */
export type ServiceName = 'smtpd' | 'pop3d' | 'metricsd' | 'webd' | 'odmrd';

export type { Account } from './supervised.js';

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
  readonly name: ServiceName;
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
/** Messages about the child itself, never the service's own (which go to onMessage). */
const LIFECYCLE: ReadonlySet<string> = new Set(['ready', 'fatal', 'serving', 'adopted', 'log', 'logs']);
/** A connection waits this long for a (re)starting child before it is told to come back later. */
const HOLD_MS = 15_000;
/** At most this many connections wait; more are told to come back later at once. */
const MAX_PENDING = 1000;

/** The service a process runs: its listeners' events are the service's (`pop3.error`), as without privilege separation. */
const SERVICE = { smtpd: 'smtp', pop3d: 'pop3', metricsd: 'metrics', webd: 'web', odmrd: 'odmr' } as const;

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
  /** The child process, its handshake and its replacement (supervised.ts); its running child serves the listeners. */
  private readonly proc: Supervised<FromServiceChild<Other>>;
  private stopping = false;
  private sweeper: NodeJS.Timeout | undefined;
  private servers: Server[] = [];
  private specsBound: Spec[] = [];
  private waiting: Waiting[] = [];
  /** Connections sent to the serving child and not yet acknowledged: still ours if it dies first. */
  private inFlight = new Map<number, Waiting>();
  private nextId = 1;

  constructor(private readonly o: ServiceChildOptions<Spec, Other>) {
    this.proc = new Supervised<FromServiceChild<Other>>({
      name: o.name,
      what: o.what,
      script: o.script,
      root: o.root,
      account: o.account,
      log: o.log,
      // ready → serve → serving; a fatal message, an exit or 30 s of silence is an error
      handshake: async (child) => {
        await awaitMessage(child, 'ready', { timeoutMs: READY_MS });
        await awaitMessage(child, 'serving', {
          send: { type: 'serve', listeners: this.specsBound } satisfies ToServiceChild<Spec>,
          timeoutMs: READY_MS,
        });
      },
      onMessage: (_child, m) => this.onMessage(m),
      onRunning: (child) => this.onRunning(child),
      // Connections it never acknowledged are still ours: they wait for the next child.
      onExit: () => {
        for (const [id, w] of this.inFlight) {
          this.inFlight.delete(id);
          if (!w.socket.destroyed) this.waiting.push(w);
        }
      },
      // A child that served and died is replaced at once: whatever killed it was one session's doing.
      crashDelay: () => 0,
      onCrash: (child, d) => {
        this.o.log.event(`${this.o.name}.crashed`, {
          pid: child.pid ?? 0,
          code: d.code ?? '',
          signal: d.signal ?? '',
          crashes: d.count,
          ...(d.stderr !== '' ? { stack: d.stderr } : {}),
          restart_in_ms: 0,
        });
        this.o.onCrash?.(d.count);
      },
    });
  }

  /** The listeners with their concrete ports. */
  get listeners(): readonly Spec[] {
    return this.specsBound;
  }

  get pid(): number | undefined {
    return this.proc.running?.pid;
  }

  /** A service's own message to the serving child (the metrics child's answers); dropped when none serves. */
  post(m: object): void {
    // with a callback a send to a child that just died is reported there, not as an 'error' event that would end root
    if (this.proc.running?.connected) this.proc.running.send(m, () => undefined);
  }

  get crashes(): number {
    return this.proc.crashes;
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
      await this.proc.launch();
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
    const child = this.proc.running;
    if (child?.connected) this.handOver(child, index, socket);
    else if (this.waiting.length >= MAX_PENDING) this.turnAway(index, socket);
    else this.waiting.push({ index, socket, since: Date.now() });
  }

  /**
   * Sends a copy of the descriptor (keepOpen) and keeps ours until the child says `adopted` (right before its first
   * byte to a greeting protocol; child-common.ts): a connection the child dies with before then is still ours and goes
   * to the next child instead of being closed unanswered.
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

  private onRunning(child: ChildProcess): void {
    const { uid, name } = this.o.account;
    this.o.log.event(`${this.o.name}.started`, {
      pid: child.pid ?? 0,
      user: name,
      uid,
      listeners: this.specsBound.map((b) => `${b.host}:${b.port}`).join(','),
    });
    this.o.onServing?.(child.pid ?? 0);
    this.flushWaiting(child);
  }

  private onMessage(m: FromServiceChild<Other>): void {
    if (m.type === 'adopted' && 'id' in m) this.adopted(Number(m.id));
    else if (m.type === 'log' && 'event' in m && 'fields' in m) relayEvent(this.o.log, m.event, m.fields);
    else if (m.type === 'logs' && 'events' in m) relayBatch(m, (name, fields) => relayEvent(this.o.log, name, fields));
    else if (!LIFECYCLE.has(m.type)) this.o.onMessage?.(m as Other);
  }

  /** SIGHUP: the child re-reads what it caches (the certificate). */
  reload(): void {
    const child = this.proc.running;
    if (child?.connected) child.send({ type: 'reload' } satisfies ToServiceChild<Spec>);
  }

  /** SIGTERM: close the ports, the child lets sessions finish for graceMs and exits; killed if it takes 5 s longer. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    for (const w of [...this.waiting, ...this.inFlight.values()]) w.socket.destroy();
    this.waiting = [];
    this.inFlight.clear();
    const closed = this.closeServers();
    await this.proc.stop((child) => {
      if (child.connected) child.send({ type: 'stop', graceMs } satisfies ToServiceChild<Spec>);
      else child.kill('SIGTERM');
    }, graceMs + 5000);
    await closed;
  }

  private async closeServers(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    // Handed-over sockets are the child's: a parent's server has no connections of its own to wait for.
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
