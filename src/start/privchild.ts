// One privilege-separated service child (SMTP, POP3): root keeps the listening sockets, the child serves connections.
import type { ChildProcess } from 'node:child_process';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { errText, QuailError } from '../core/index.js';
import {
  bindShared,
  canShareListen,
  DescriptorGuard,
  plainIp,
  refuseSocket,
  type SharedListen,
} from '../tcpserver/index.js';
import { ConnectionLimits, type Admission } from '../throttle/index.js';
import { relayBatch, type LogsMessage } from './log-batch.js';
import type { LoginHub, ThrottleMessage } from './login-hub.js';
import type { EventName } from './events.js';
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
  /**
   * `accepts`: the child listens and accepts itself (a `listen` per listener follows) and counts its connections, or
   * with `admits` (several children accept on the same sockets) asks root to count each one (`admit`).
   */
  | {
      readonly type: 'serve';
      readonly listeners: readonly Spec[];
      readonly accepts?: boolean;
      readonly admits?: boolean;
    }
  /**
   * Root's answer to `admit` number `ask`: counted as connection `id` (the child says `closed` of it when its session
   * is over), or refused (no id) with the text the client is told.
   */
  | { readonly type: 'admission'; readonly ask: number; readonly id?: number; readonly refuse?: string }
  /** Carries the listener's bound socket (src/tcpserver's bindShared): listen and accept on it, say `listening`. */
  | { readonly type: 'listen'; readonly index: number }
  | { readonly type: 'adopt'; readonly index: number; readonly id: number }
  | { readonly type: 'reload' }
  | { readonly type: 'stop'; readonly graceMs: number }
  /** The listener's connections (counted here, across the children) passed or fell below the stress mark. */
  | { readonly type: 'stress'; readonly index: number; readonly on: boolean }
  /** What a sibling child shared (below). */
  | { readonly type: 'share'; readonly body: unknown }
  /** The failed-login table's answer or news (login-hub.ts; services with `logins`). */
  | ThrottleMessage;

/** Child → parent: the lifecycle messages every service child sends; `other` are the service's own. */
export type FromServiceChild<Other> =
  | { readonly type: 'ready'; readonly uid: number; readonly gid: number }
  | { readonly type: 'fatal'; readonly error: string }
  | { readonly type: 'serving' }
  | { readonly type: 'listening'; readonly index: number }
  /** A connection the child accepted itself (`admits`): may it be served? Root counts it and answers `admission`. */
  | { readonly type: 'admit'; readonly index: number; readonly ask: number; readonly ip: string }
  /** The child holds its own descriptor of handed-over connection `id`: the parent closes its copy. */
  | { readonly type: 'adopted'; readonly id: number }
  | { readonly type: 'log'; readonly event: string; readonly fields: Record<string, unknown> }
  /** For the other children of the service (state they must share, such as accepted ETRNs; AUTH failures go to root's table instead, `throttle`): root passes it on. */
  | { readonly type: 'share'; readonly body: unknown }
  /** A request to the failed-login table root keeps for every service (login-hub.ts): a slowed attempt, a verdict. */
  | { readonly type: 'throttle'; readonly body: unknown }
  | LogsMessage
  | Other;

/**
 * Root counts a service's connections itself, across all its children (each child then counts nothing): maxconn and
 * maxperip hold for the listener as a whole whichever child serves a session, and so does stress mode.
 */
export interface AdmissionPolicy<Spec> {
  /** The listener's limits; `stress`: whether stress mode is on for it (its cap is the child's own business). */
  limits(spec: Spec): { readonly maxConnections: number; readonly maxPerIp: number; readonly stress: boolean };
  /** A connection over a limit: log it; what the client is told before it is closed. */
  refused(spec: Spec, ip: string, why: Exclude<Admission, 'ok'>): string | undefined;
  /** The listener entered (three quarters of maxconn) or left (below half) stress mode. */
  stressChanged(spec: Spec, on: boolean, connections: number): void;
}

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
  /**
   * Listeners whose client speaks first in plain text (HTTP): the child keeps root's copy of a connection until its
   * first answer byte, as for a greeting, but the request it read before dying is gone, so a connection its child died
   * with is told busyReply by root (and `event` logged) instead of going to the next child unanswered.
   */
  readonly clientSpeaksFirst?: { readonly test: (spec: Spec) => boolean; readonly event: EventName };
  /**
   * Children serving the listeners at once (1 when not given): each connection goes to the next running one. Only
   * for services whose sessions share nothing but what root or the disk holds (SMTP).
   */
  readonly instances?: number;
  /**
   * Root admits the connections (needed with more than one instance; the children must then report `closed`): the
   * connections it hands over, or, when the children accept themselves (directAccept), each one they ask about.
   */
  readonly admission?: AdmissionPolicy<Spec>;
  /**
   * The children accept on the listening sockets themselves (root binds them and keeps its descriptor without
   * accepting: the port and its queue of waiting connections outlive a child): no connection passes through root. One
   * instance counts its connections itself; several (with `admission`) ask root to count each one, a small message
   * each way instead of the descriptor's hand-over. If no child serves for TAKEOVER_MS, root accepts from then on as
   * without it (each connection waits for a child, or is told busyReply) and logs `outage`.
   */
  readonly directAccept?: { readonly outage: EventName };
  /** The service's own messages (a login, a queued message). */
  readonly onMessage?: (m: Other) => void;
  /** The service checks passwords: its children ask and tell root's one failed-login table (login-hub.ts). */
  readonly logins?: LoginHub;
  /** A child serves the listeners now: the pids of all that serve. */
  readonly onServing?: (pids: readonly number[]) => void;
  /** A child died unexpectedly: how many times so far. */
  readonly onCrash?: (crashes: number) => void;
}

const READY_MS = 30_000;
/** Messages about the child itself, never the service's own (which go to onMessage). */
const LIFECYCLE: ReadonlySet<string> = new Set([
  'ready',
  'fatal',
  'serving',
  'listening',
  'adopted',
  'admit',
  'log',
  'logs',
  'share',
  'throttle',
]);
/** A connection waits this long for a (re)starting child before it is told to come back later. */
const HOLD_MS = 15_000;
/** At most this many connections wait; more are told to come back later at once. */
const MAX_PENDING = 1000;
/**
 * Children accepting themselves (directAccept): connections wait in the kernel's queue while none serves; after this
 * long without one, root accepts them itself (and they get HOLD_MS more, then busyReply).
 */
const TAKEOVER_MS = 5_000;

/** The service a process runs: its listeners' events are the service's (`pop3.error`), as without privilege separation. */
const SERVICE = { smtpd: 'smtp', pop3d: 'pop3', metricsd: 'metrics', webd: 'web', odmrd: 'odmr' } as const;

/** Listens on spec's address, or on a socket bound already (src/tcpserver's bindShared handle). */
function bind(
  where: { readonly spec: HostPort } | { readonly handle: object },
  onConn: (s: Socket) => void,
  onError: (err: Error) => void,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Out of descriptors: a connection accepted close to the limit is closed, EMFILE reported (once a minute).
    const descriptors = new DescriptorGuard((text) => onError(new Error(text)));
    // Paused: the root process accepts but never reads; the socket is handed to the child unread.
    const srv = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => {
      if (descriptors.admit(s)) onConn(s);
    });
    srv.once('error', reject);
    const listening = (): void => {
      srv.off('error', reject);
      // A failed accept (out of descriptors: EMFILE) is an 'error' on the server; it keeps listening. Unhandled,
      // it would end the root process.
      srv.on('error', (err) => {
        if (!descriptors.acceptError(err)) onError(err);
      });
      resolve(srv);
    };
    if ('spec' in where) srv.listen(where.spec.port, where.spec.host, listening);
    else srv.listen(where.handle, listening);
  });
}

/** An admitted connection, counted in its listener's limits until released (exactly once). */
interface Counted {
  readonly index: number;
  readonly ip: string;
  released: boolean;
}

interface Waiting {
  readonly index: number;
  readonly socket: Socket;
  readonly since: number;
  /** Counted by root (admission on). */
  readonly counted?: Counted;
}

/**
 * Binds the listeners as root and keeps them for the whole run; forks the child, which drops to `account` and
 * serves each accepted connection the parent passes it (`adopt`). The ports never close while a child is
 * replaced: connections that arrive meanwhile wait (paused, unread) for the next child, and are told to come back
 * later if none takes them within 15 s. A child that dies after it served is replaced at once (a crash is one
 * session's doing, not a reason to keep the port dark); one that cannot start is retried after a growing delay.
 */
export class ServiceChild<Spec extends HostPort, Other extends { readonly type: string }> {
  /** The child processes, each with its handshake and its replacement (supervised.ts); their running children serve. */
  private readonly procs: Supervised<FromServiceChild<Other>>[] = [];
  /** Where the next connection goes first (round robin over the running children). */
  private turn = 0;
  private stopping = false;
  private sweeper: NodeJS.Timeout | undefined;
  /** Per listener: root's accepting server (none while the children accept: `shared`). */
  private servers: (Server | undefined)[] = [];
  /** Per listener, while the children accept on it themselves: the socket root bound and holds without accepting. */
  private shared: (SharedListen | undefined)[] = [];
  /** The children accept themselves (directAccept, one instance, this Node can share a bound socket). */
  private direct = false;
  /** No child served for TAKEOVER_MS: root accepts (set once, until the service stops). */
  private outage: NodeJS.Timeout | undefined;
  private specsBound: Spec[] = [];
  private waiting: Waiting[] = [];
  /** Connections sent to the serving child and not yet acknowledged: still ours if it dies first. */
  private inFlight = new Map<number, Waiting & { readonly child: ChildProcess }>();
  /** Connections a child adopted, while root counts them (admission on): until the child says `closed` or dies. */
  private served = new Map<number, { readonly counted: Counted; readonly child: ChildProcess }>();
  /** Per listener (admission on): the connections counted, and whether it is under stress. */
  private limits: ConnectionLimits[] = [];
  /** Per listener (admission on): its limits and whether stress mode is on, read once at start. */
  private marks: ReturnType<AdmissionPolicy<Spec>['limits']>[] = [];
  /** Handed-over connections a child said `closed` of before `adopted` reached root. */
  private readonly endedEarly = new Set<number>();
  private stressed: boolean[] = [];
  private nextId = 1;

  constructor(private readonly o: ServiceChildOptions<Spec, Other>) {
    for (let i = 0; i < Math.max(1, o.instances ?? 1); i++) this.procs.push(this.supervised());
    o.logins?.join(() => this.runningChildren());
  }

  private supervised(): Supervised<FromServiceChild<Other>> {
    const o = this.o;
    return new Supervised<FromServiceChild<Other>>({
      name: o.name,
      what: o.what,
      script: o.script,
      root: o.root,
      account: o.account,
      log: o.log,
      // ready → serve → serving; a fatal message, an exit or 30 s of silence is an error
      handshake: async (child) => {
        await awaitMessage(child, 'ready', { timeoutMs: READY_MS });
        // before it serves anything: the failed logins counted so far (also those its predecessor saw)
        o.logins?.greet(child);
        const accepts = this.direct && this.shared.some((l) => l !== undefined);
        const admits = accepts && this.o.admission !== undefined && this.procs.length > 1;
        await awaitMessage(child, 'serving', {
          send: { type: 'serve', listeners: this.specsBound, accepts, admits } satisfies ToServiceChild<Spec>,
          timeoutMs: READY_MS,
        });
        for (const [index, l] of this.shared.entries())
          if (l !== undefined)
            await awaitMessage(child, 'listening', {
              send: { type: 'listen', index } satisfies ToServiceChild<Spec>,
              handle: l.handle,
              timeoutMs: READY_MS,
            });
      },
      onMessage: (child, m) => this.onMessage(child, m),
      onRunning: (child) => this.onRunning(child),
      // Connections it never acknowledged are still ours: they wait for the next child.
      onExit: (child) => {
        for (const [id, w] of this.inFlight) {
          if (w.child !== child) continue;
          this.inFlight.delete(id);
          if (this.endedEarly.delete(id) || w.socket.destroyed) {
            w.socket.destroy();
            this.release(w.counted);
          } else if (this.readByChild(w.index)) this.lost(w);
          else this.waiting.push(w);
        }
        // the sessions it served died with it
        for (const [id, c] of this.served) {
          if (c.child !== child) continue;
          this.served.delete(id);
          this.release(c.counted);
        }
        const next = this.runningChildren()[0];
        if (next) this.flushWaiting(next);
        else if (this.shared.some((l) => l !== undefined) && !this.stopping)
          this.outage ??= setTimeout(() => this.takeOver(), TAKEOVER_MS);
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
        this.o.onCrash?.(this.crashes);
      },
    });
  }

  /** The children that serve now. */
  private runningChildren(): ChildProcess[] {
    return this.procs.flatMap((p) => (p.running?.connected ? [p.running] : []));
  }

  /** The running child with the fewest connections (the next in turn among equals), if any. */
  private pick(): ChildProcess | undefined {
    const up = this.runningChildren();
    if (up.length <= 1) return up[0];
    const load = new Map<ChildProcess, number>(up.map((c) => [c, 0]));
    const add = (c: ChildProcess): void => {
      const n = load.get(c);
      if (n !== undefined) load.set(c, n + 1);
    };
    for (const w of this.inFlight.values()) add(w.child);
    for (const c of this.served.values()) add(c.child);
    this.turn = (this.turn + 1) % up.length;
    let best: ChildProcess | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < up.length; i++) {
      const c = up[(this.turn + i) % up.length] as ChildProcess;
      const n = load.get(c) ?? 0;
      if (n < bestLoad) {
        best = c;
        bestLoad = n;
      }
    }
    return best;
  }

  /** Counts a new connection in (admission on): undefined when it was refused (and told so). */
  private admit(index: number, socket: Socket): Counted | 'refused' | undefined {
    const c = this.count(index, plainIp(socket.remoteAddress));
    if (c === undefined || !('refuse' in c)) return c;
    refuseSocket(socket, c.refuse);
    return 'refused';
  }

  /**
   * Counts a connection from `ip` in listener `index`'s limits, whoever accepted it: counted, or over a limit (logged
   * by the policy, with what the client is told); undefined when root does not count (admission off).
   */
  private count(index: number, ip: string): Counted | { readonly refuse: string | undefined } | undefined {
    const policy = this.o.admission;
    const limits = this.limits[index];
    const spec = this.specsBound[index];
    if (policy === undefined || limits === undefined || spec === undefined) return undefined;
    const admitted = limits.admit(ip);
    if (admitted !== 'ok') return { refuse: policy.refused(spec, ip, admitted) };
    this.stress(index);
    return { index, ip, released: false };
  }

  private release(counted: Counted | undefined): void {
    if (counted === undefined || counted.released) return;
    counted.released = true;
    this.limits[counted.index]?.release(counted.ip);
    this.stress(counted.index);
  }

  /** Stress mode follows the listener's count (ListenerStress's marks); every child is told when it changes. */
  private stress(index: number): void {
    const policy = this.o.admission;
    const spec = this.specsBound[index];
    const limits = this.limits[index];
    if (policy === undefined || spec === undefined || limits === undefined) return;
    const mark = this.marks[index];
    if (mark === undefined || !mark.stress) return;
    const { maxConnections } = mark;
    const on = this.stressed[index] === true;
    const n = limits.open;
    const next = on ? n * 2 >= maxConnections : n * 4 >= maxConnections * 3;
    if (next === on) return;
    this.stressed[index] = next;
    policy.stressChanged(spec, next, n);
    for (const child of this.runningChildren())
      child.send({ type: 'stress', index, on: next } satisfies ToServiceChild<Spec>, () => undefined);
  }

  /** The listeners with their concrete ports. */
  get listeners(): readonly Spec[] {
    return this.specsBound;
  }

  /** The first child's pid (the one of a service with one child). */
  get pid(): number | undefined {
    return this.procs[0]?.running?.pid;
  }

  /** The pids of the running children. */
  get pids(): number[] {
    return this.runningChildren().flatMap((c) => (c.pid !== undefined ? [c.pid] : []));
  }

  /** A service's own message to the serving child (the metrics child's answers); dropped when none serves. */
  post(m: object): void {
    // with a callback a send to a child that just died is reported there, not as an 'error' event that would end root
    const child = this.procs[0]?.running;
    if (child?.connected) child.send(m, () => undefined);
  }

  get crashes(): number {
    return this.procs.reduce((n, p) => n + p.crashes, 0);
  }

  /** First start: binds, forks, waits until the child serves. Any failure is thrown (the caller refuses to start). */
  async start(): Promise<readonly Spec[]> {
    // a listener named by host name is bound by Node's listen, which looks the name up: root accepts then, as before
    this.direct =
      this.o.directAccept !== undefined &&
      (this.procs.length === 1 || this.o.admission !== undefined) &&
      this.o.specs.every((spec) => isIP(spec.host) !== 0) &&
      canShareListen();
    for (const spec of this.o.specs) {
      const index = this.specsBound.length;
      let port: number;
      try {
        if (this.direct) {
          const l = bindShared(spec.host, spec.port);
          this.shared[index] = l;
          port = l.port;
        } else {
          const srv = await this.listenHere(index, spec, undefined);
          this.servers[index] = srv;
          const a = srv.address();
          port = typeof a === 'object' && a !== null ? a.port : spec.port;
        }
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
      this.specsBound.push({ ...spec, port });
    }
    const policy = this.o.admission;
    if (policy) {
      this.marks = this.specsBound.map((spec) => policy.limits(spec));
      this.limits = this.marks.map((l) => new ConnectionLimits(l.maxConnections, l.maxPerIp));
    }
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    try {
      await Promise.all(this.procs.map((p) => p.launch()));
    } catch (err) {
      await Promise.all(this.procs.map((p) => p.stop((c) => c.kill('SIGKILL'))));
      await this.closeServers();
      throw err;
    }
    return this.specsBound;
  }

  /** Root accepts on the listener (`handle`: the socket bound for the children, taken over; else binds spec). */
  private listenHere(index: number, spec: Spec, handle: object | undefined): Promise<Server> {
    return bind(
      handle !== undefined ? { handle } : { spec },
      (s) => this.onConnection(index, s),
      (err) => {
        this.o.log.event(`${this.o.name}.error`, {
          listener: `${spec.host}:${spec.port}`,
          error: `accept failed: ${errText(err)}`,
        });
      },
    );
  }

  /**
   * No child has served for TAKEOVER_MS (directAccept): root accepts on the listeners itself from now on, so the
   * connections waiting in the kernel's queue, and later ones, get the hand-over's hold and busyReply instead of
   * waiting unanswered; the children that follow get each connection handed over.
   */
  private takeOver(): void {
    this.outage = undefined;
    const event = this.o.directAccept?.outage;
    if (this.stopping || this.runningChildren().length > 0 || event === undefined) return;
    this.direct = false;
    for (const [index, l] of this.shared.entries()) {
      const spec = this.specsBound[index];
      if (l === undefined || spec === undefined) continue;
      this.shared[index] = undefined;
      this.listenHere(index, spec, l.handle).then(
        (srv) => {
          if (this.stopping) srv.close();
          else this.servers[index] = srv;
        },
        (err: unknown) => {
          l.close();
          this.o.log.event(`${this.o.name}.error`, {
            listener: `${spec.host}:${spec.port}`,
            error: `cannot accept here: ${errText(err)}`,
          });
        },
      );
    }
    // info, as every event not named .error/.warning: the failed starts before it are logged as errors already
    this.o.log.event(event, {
      after_ms: TAKEOVER_MS,
      listeners: this.specsBound.map((b) => `${b.host}:${b.port}`).join(','),
    });
  }

  private onConnection(index: number, socket: Socket): void {
    socket.on('error', () => undefined); // a reset while it waits; the child installs its own
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const counted = this.admit(index, socket);
    if (counted === 'refused') return;
    const child = this.pick();
    if (child) this.handOver(child, index, socket, Date.now(), counted);
    else if (this.waiting.length >= MAX_PENDING) this.turnAway(index, socket, counted);
    else this.waiting.push({ index, socket, since: Date.now(), ...(counted ? { counted } : {}) });
  }

  /**
   * Sends a copy of the descriptor (keepOpen) and keeps ours until the child says `adopted` (right before its first
   * byte to a greeting protocol; child-common.ts): a connection the child dies with before then is still ours and goes
   * to the next child instead of being closed unanswered.
   */
  private handOver(child: ChildProcess, index: number, socket: Socket, since: number, counted?: Counted): void {
    const id = this.nextId++;
    const extra = counted ? { counted } : {};
    this.inFlight.set(id, { index, socket, since, child, ...extra });
    const back = (): void => {
      if (!this.inFlight.delete(id)) return;
      if (!socket.destroyed) this.waiting.push({ index, socket, since, ...extra });
      else this.release(counted);
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
    if (this.endedEarly.delete(id)) this.release(w?.counted);
    else if (w?.counted && !w.counted.released) this.served.set(id, { counted: w.counted, child: w.child });
    // Only our descriptor closes (no FIN, no reset): the child's copy keeps the connection.
    w?.socket.destroy();
  }

  /**
   * A child accepted a connection itself and asks (`admit`): counted like a handed-over one, as served by that child
   * until it says `closed` or dies; or refused (logged by the policy), the child telling the client.
   */
  private admitAsked(child: ChildProcess, index: number, ask: number, ip: string): void {
    const answer = (a: { readonly id?: number; readonly refuse?: string | undefined }): void => {
      if (child.connected) child.send({ type: 'admission', ask, ...a } satisfies ToServiceChild<Spec>, () => undefined);
    };
    // a listener root does not count (a child's garbage index), or a stop under way: refused without a word
    const c = this.stopping ? undefined : this.count(index, ip);
    if (c === undefined) return answer({});
    if ('refuse' in c) return answer(c.refuse === undefined ? {} : { refuse: c.refuse });
    const id = this.nextId++;
    this.served.set(id, { counted: c, child });
    answer({ id });
  }

  /** A child's session of handed-over connection `id` is over. */
  private closed(id: number): void {
    const c = this.served.get(id);
    if (c === undefined) {
      // ended before root heard `adopted` (the child sends them in that order; this only guards the count)
      if (this.inFlight.has(id)) this.endedEarly.add(id);
      return;
    }
    this.served.delete(id);
    this.release(c.counted);
  }

  /** The child may have read from a connection of this listener before it said `adopted` (the client speaks first). */
  private readByChild(index: number): boolean {
    const spec = this.specsBound[index];
    return spec !== undefined && this.o.clientSpeaksFirst?.test(spec) === true;
  }

  /** A connection whose child died before answering what it may have read: root says try again (busyReply). */
  private lost(w: Waiting): void {
    this.release(w.counted);
    const spec = this.specsBound[w.index];
    const event = this.o.clientSpeaksFirst?.event;
    if (event !== undefined)
      this.o.log.event(event, {
        listener: spec ? `${spec.host}:${spec.port}` : '',
        ip: w.socket.remoteAddress ?? '',
      });
    refuseSocket(w.socket, spec ? this.o.busyReply(spec) : undefined);
  }

  private turnAway(index: number, socket: Socket, counted?: Counted): void {
    this.release(counted);
    const spec = this.specsBound[index];
    const text = spec ? this.o.busyReply(spec) : undefined;
    this.o.log.event(`${this.o.name}.busy`, {
      listener: spec ? `${spec.host}:${spec.port}` : '',
      ip: socket.remoteAddress ?? '',
    });
    refuseSocket(socket, text);
  }

  /** Connections waited too long for a child: told to come back later. */
  private sweep(): void {
    const now = Date.now();
    const keep: Waiting[] = [];
    for (const w of this.waiting) {
      if (w.socket.destroyed) this.release(w.counted);
      else if (now - w.since >= HOLD_MS) this.turnAway(w.index, w.socket, w.counted);
      else keep.push(w);
    }
    this.waiting = keep;
  }

  /** Connections that waited for a child go to the running ones (`first` is running now), in turn. */
  private flushWaiting(first: ChildProcess): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting)
      if (!w.socket.destroyed) this.handOver(this.pick() ?? first, w.index, w.socket, w.since, w.counted);
      else this.release(w.counted);
  }

  private onRunning(child: ChildProcess): void {
    clearTimeout(this.outage);
    this.outage = undefined;
    const { uid, name } = this.o.account;
    this.o.log.event(`${this.o.name}.started`, {
      pid: child.pid ?? 0,
      user: name,
      uid,
      listeners: this.specsBound.map((b) => `${b.host}:${b.port}`).join(','),
    });
    this.o.onServing?.(this.pids);
    for (const [index, on] of this.stressed.entries())
      if (on) child.send({ type: 'stress', index, on } satisfies ToServiceChild<Spec>, () => undefined);
    this.flushWaiting(child);
  }

  private onMessage(from: ChildProcess, m: FromServiceChild<Other>): void {
    if (m.type === 'adopted' && 'id' in m) this.adopted(Number(m.id));
    else if (m.type === 'admit' && 'ask' in m)
      this.admitAsked(from, Number(m.index), Number(m.ask), typeof m.ip === 'string' ? m.ip : 'unknown');
    else if (m.type === 'log' && 'event' in m && 'fields' in m) relayEvent(this.o.log, m.event, m.fields);
    else if (m.type === 'logs' && 'events' in m) {
      relayBatch(m, (name, fields) => relayEvent(this.o.log, name, fields));
      if ('closed' in m && Array.isArray(m.closed)) for (const id of m.closed as unknown[]) this.closed(Number(id));
    } else if (m.type === 'share' && 'body' in m) {
      for (const child of this.runningChildren())
        if (child !== from) child.send({ type: 'share', body: m.body } satisfies ToServiceChild<Spec>, () => undefined);
    } else if (m.type === 'throttle' && 'body' in m) this.o.logins?.heard(from, m.body);
    else if (!LIFECYCLE.has(m.type)) this.o.onMessage?.(m as Other);
  }

  /** SIGHUP: the child re-reads what it caches (the certificate). */
  reload(): void {
    for (const child of this.runningChildren()) child.send({ type: 'reload' } satisfies ToServiceChild<Spec>);
  }

  /** SIGTERM: close the ports, the child lets sessions finish for graceMs and exits; killed if it takes 5 s longer. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweeper);
    clearTimeout(this.outage);
    for (const w of [...this.waiting, ...this.inFlight.values()]) w.socket.destroy();
    this.waiting = [];
    this.inFlight.clear();
    this.served.clear();
    this.endedEarly.clear();
    const closed = this.closeServers();
    await Promise.all(
      this.procs.map((p) =>
        p.stop((child) => {
          if (child.connected) child.send({ type: 'stop', graceMs } satisfies ToServiceChild<Spec>);
          else child.kill('SIGTERM');
        }, graceMs + 5000),
      ),
    );
    await closed;
  }

  private async closeServers(): Promise<void> {
    for (const l of this.shared) l?.close();
    this.shared = [];
    const servers = this.servers.flatMap((s) => (s ? [s] : []));
    this.servers = [];
    // Handed-over sockets are the child's: a parent's server has no connections of its own to wait for.
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
