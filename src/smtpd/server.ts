// A listening SMTP/submission socket: connection limits, tcp.smtp rules, the session environment, TLS.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { createSecureContext, type SecureContext } from 'node:tls';
import { errText } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { QueueStore } from '../queue/types.js';
import { ConnectionLimits, LoginThrottle } from '../throttle/index.js';
import { NO_DIRECTORY, type Authenticator, type RecipientCheck, type SenderCheck } from './auth.js';
import type { SessionEnv } from './policy.js';
import { R, renderReply, type Reply } from './replies.js';
import {
  DEFAULT_LIMITS,
  runSession,
  type SessionEventLog,
  type SessionLimits,
  type SessionSummary,
} from './session.js';
import { matchTcpRules, parseTcpRules } from './tcprules.js';

export type ListenerKind = 'smtp' | 'submission';

export interface ListenerSpec {
  readonly host: string;
  readonly port: number;
  readonly kind: ListenerKind;
  /** key=value words after the kind in control/listeners (docs/LISTENERS.md). */
  readonly options: Readonly<Record<string, string>>;
}

export interface SmtpServerDeps {
  /** A fresh control snapshot for each session (qmail-smtpd reads its files per session). */
  readonly controlFor: () => Control;
  readonly queue: Pick<QueueStore, 'inject'>;
  readonly authenticator?: Authenticator;
  /** Failed-AUTH slowdown; pass one to share it between listeners (default: one per listener, 1 s doubling to 30 s). */
  readonly authThrottle?: LoginThrottle;
  /** RCPT-time mailbox checks for directory-managed domains. */
  readonly recipients?: RecipientCheck;
  /** The senders an authenticated login may use (default: its own address only). */
  readonly senders?: SenderCheck;
  /** The current STARTTLS context (undefined = no STARTTLS); asked per connection, so a reload applies. */
  readonly tls?: () => SecureContext | undefined;
  readonly limits?: Partial<SessionLimits>;
  readonly maxConnections?: number;
  readonly maxPerIp?: number;
  readonly clock?: () => Date;
  readonly isLocalIp?: (ip: string) => boolean;
  readonly log?: SessionEventLog;
  /** Conformance runner only: the whole session environment, instead of socket addresses and tcp.smtp. */
  readonly envFor?: (socket: Socket) => SessionEnv;
  readonly onSession?: (summary: SessionSummary, env: SessionEnv) => void;
}

const plainIp = (a: string | undefined): string => (a ?? 'unknown').replace(/^::ffff:(?=\d+\.)/, '');

/** This host's interface addresses (qmail's ipme), for B.2. */
export function hostIps(): Set<string> {
  const out = new Set<string>(['127.0.0.1']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** control/servercert.pem (private key and certificate in one PEM file, as qmail-tls keeps it), or undefined. */
export function loadTlsContext(control: Control): SecureContext | undefined {
  const pem = control.raw('servercert.pem');
  if (pem === null) return undefined;
  return createSecureContext({ key: pem, cert: pem, minVersion: 'TLSv1.2' });
}

export class SmtpListener {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly limitsByIp: ConnectionLimits;
  private readonly running = new Set<Promise<unknown>>();
  private readonly limits: SessionLimits;
  private readonly isLocalIp: (ip: string) => boolean;
  private readonly authThrottle: LoginThrottle;

  constructor(
    readonly spec: ListenerSpec,
    private readonly deps: SmtpServerDeps,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits, ...numericOptions(spec.options) };
    this.authThrottle = deps.authThrottle ?? new LoginThrottle();
    this.limitsByIp = new ConnectionLimits(
      Number(spec.options['maxconn'] ?? deps.maxConnections ?? 100),
      Number(spec.options['maxperip'] ?? deps.maxPerIp ?? 20),
    );
    const ips = hostIps();
    this.isLocalIp = deps.isLocalIp ?? ((ip) => ips.has(ip));
    // allowHalfOpen: a client may send everything and shut its side; replies still go out (pipelining).
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket));
    // A failed accept (EMFILE...) is an 'error' on the server, which keeps listening; unhandled it would end the process.
    this.server.on('error', (err) =>
      this.deps.log?.('smtp.error', { listener: `${spec.host}:${spec.port}`, error: `accept failed: ${err.message}` }),
    );
  }

  /**
   * Binds spec.host:spec.port, or takes over an already bound server (`handle`: what a privileged parent bound
   * and passed with child.send('server', handle)); the connections are then served here with this listener's
   * options (half-open, paused on connect).
   */
  listen(handle?: Server): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      };
      if (handle) this.server.listen(handle, done);
      else this.server.listen(this.spec.port, this.spec.host, done);
    });
  }

  /** Serves a connection accepted elsewhere (a parent's socket passed with child.send('socket', s)). */
  adopt(socket: Socket): void {
    // A socket received over IPC is made without the listener's options: keep replying after the client's FIN
    // (pipelined commands then EOF), as the listening server's own sockets do.
    socket.allowHalfOpen = true;
    socket.pause();
    this.accept(socket);
  }

  get address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  get active(): number {
    return this.sockets.size;
  }

  /** Stops accepting; waits up to graceMs for sessions to end, then cuts the rest (never mid-commit: 250 follows commit). */
  async close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    const all = Promise.allSettled([...this.running]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const s of this.sockets) s.destroy();
    await all;
    await closed;
  }

  private accept(socket: Socket): void {
    const log = this.deps.log ?? (() => undefined);
    const ip = plainIp(socket.remoteAddress);
    const label = `${this.address?.address ?? this.spec.host}:${this.address?.port ?? this.spec.port}`;
    socket.on('error', () => undefined); // resets are normal; the session sees EOF
    const refuse = (r: Reply, why: string): void => {
      log('smtp.refused', { ip, why, listener: label });
      // Read and drop what the client sends (so closing does not reset the reply away), then hang up.
      socket.resume();
      socket.end(renderReply(r, false));
      setTimeout(() => socket.destroy(), 10_000).unref();
    };
    const admitted = this.limitsByIp.admit(ip);
    if (admitted === 'maxconn') return refuse(R.tooManyConnections, 'maxconn');
    if (admitted === 'maxperip') return refuse(R.tooManyFromIp, 'maxperip');
    const control = this.deps.controlFor();
    let env: SessionEnv;
    if (this.deps.envFor) env = this.deps.envFor(socket);
    else {
      const built = this.buildEnv(socket, ip, control);
      if (built === 'deny') {
        this.limitsByIp.release(ip);
        return refuse(R.denied, 'tcp.smtp');
      }
      env = built;
    }
    this.sockets.add(socket);
    log('smtp.connect', { ip, listener: label, kind: this.spec.kind });
    let tls: SecureContext | undefined;
    try {
      tls = this.deps.tls?.();
    } catch (err) {
      log('smtp.error', { ip, error: `STARTTLS disabled: ${errText(err)}` });
    }
    const run = runSession(socket, {
      control,
      env,
      tls,
      queue: this.deps.queue,
      kind: this.spec.kind,
      limits: this.limits,
      authenticator: this.deps.authenticator ?? NO_DIRECTORY,
      authThrottle: this.authThrottle,
      recipients: this.deps.recipients,
      senders: this.deps.senders,
      senderAuth: this.spec.options['senderauth'] !== 'off',
      listener: `${this.spec.host}:${this.spec.port}`,
      ...(this.spec.options['queue'] !== undefined ? { listenerQueue: this.spec.options['queue'] } : {}),
      clock: this.deps.clock ?? (() => new Date()),
      isLocalIp: this.isLocalIp,
      log,
    })
      .then((summary) => {
        this.deps.onSession?.(summary, env);
      })
      .catch((err: unknown) => {
        log('smtp.error', { ip, error: errText(err) });
        socket.destroy();
      })
      .finally(() => {
        this.sockets.delete(socket);
        this.limitsByIp.release(ip);
        this.running.delete(run);
      });
    this.running.add(run);
  }

  /** Production environment: addresses of the socket, TCPLOCALHOST = me, listener options, then tcp.smtp. */
  private buildEnv(socket: Socket, ip: string, control: Control): SessionEnv | 'deny' {
    const env: Record<string, string | undefined> = {
      TCPREMOTEIP: ip,
      TCPREMOTEPORT: String(socket.remotePort ?? ''),
      TCPLOCALIP: plainIp(socket.localAddress),
      TCPLOCALPORT: String(socket.localPort ?? ''),
      PROTO: 'TCP',
    };
    const me = control.me();
    if (me !== null) env['TCPLOCALHOST'] = me;
    const db = this.spec.options['databytes'];
    if (db !== undefined) env['DATABYTES'] = db;
    // The listener's own policy (docs/LISTENERS.md), as environment: a tcp.smtp rule may still override it per client.
    const o = this.spec.options;
    if (o['rcpthosts'] === 'none') env['QUAIL_RCPTHOSTS'] = 'none';
    if (o['auth'] !== undefined) env['QUAIL_AUTH'] = o['auth'];
    if (o['tls'] === 'required') env['QUAIL_TLS'] = 'required';
    if (o['tarpitcount'] !== undefined) env['TARPITCOUNT'] = o['tarpitcount'];
    if (o['tarpitdelay'] !== undefined) env['TARPITDELAY'] = o['tarpitdelay'];
    const text = control.raw('tcp.smtp');
    if (text !== null) {
      const rule = matchTcpRules(parseTcpRules(text), ip);
      if (rule?.action === 'deny') return 'deny';
      for (const [k, v] of rule?.env ?? []) {
        if (v === null) delete env[k];
        else env[k] = v;
      }
    }
    return env;
  }
}

function numericOptions(o: Readonly<Record<string, string>>): Partial<SessionLimits> {
  const out: { -readonly [K in keyof SessionLimits]?: number } = {};
  const n = (k: string): number | undefined => (o[k] !== undefined && /^\d+$/.test(o[k]) ? Number(o[k]) : undefined);
  const set = (k: keyof SessionLimits, v: number | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  set('maxRcpt', n('maxrcpt'));
  set('maxLine', n('maxline'));
  set('maxErrors', n('maxerrors'));
  set('maxNoop', n('maxnoop'));
  return out;
}
