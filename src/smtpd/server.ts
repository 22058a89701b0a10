// A listening SMTP/submission socket: connection limits, tcp.smtp rules, the session environment, TLS.
import { promises as dnsPromises } from 'node:dns';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { createSecureContext, type SecureContext } from 'node:tls';
import { errText } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { QueueStore } from '../queue/types.js';
import {
  matchTcpRules,
  parseTcpRulesKept,
  plainIp,
  TcpServer,
  type Admitted,
  type Refusal,
  type Served,
} from '../tcpserver/index.js';
import { LoginThrottle, type LoginAttempts } from '../throttle/index.js';
import { NO_DIRECTORY, type Authenticator, type RecipientCheck, type SenderCheck } from './auth.js';
import type { CheckPolicy, MessageChecker } from './check.js';
import type { SessionEnv } from './policy.js';
import type { QueueFilter } from './filter.js';
import type { AutoTurnHook, EtrnService } from './etrn.js';
import type { RblConfig, RblResolver, RblSource } from './rbl.js';
import { R, renderReply } from './replies.js';
import { ListenerStress } from '../lineio/index.js';
import {
  DEFAULT_LIMITS,
  runSession,
  type SessionControl,
  type SessionEventLog,
  type SessionLimits,
  type SessionSummary,
} from './session.js';

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
  /** Runs the program a session's QMAILQUEUE names (tcp.smtp); absent: such sessions get 451 at DATA. */
  readonly filter?: QueueFilter;
  readonly authenticator?: Authenticator;
  /**
   * Failed-AUTH slowdown; pass one to share it between listeners and services (quail start: one table for SMTP, POP3,
   * ODMR and the web admin; default: one per listener, 1 s doubling to 30 s).
   */
  readonly authThrottle?: LoginAttempts;
  /** RCPT-time mailbox checks for directory-managed domains. */
  readonly recipients?: RecipientCheck;
  /** Inbound SPF/DKIM/DMARC/ARC checks, used as the listener's `authcheck=` says (smtp: header, submission: off). */
  readonly checker?: MessageChecker;
  /** The senders an authenticated login may use (default: its own address only). */
  readonly senders?: SenderCheck;
  /**
   * The resolver of the listener's DNS blocklists (`rbl=`), one per session (src/start: control/dnsservers, else the
   * system's). Absent: node's resolver with the system's servers.
   */
  readonly dns?: () => RblResolver;
  /** ETRN for held domains (src/start fills it in over src/held; absent = 502). */
  readonly etrn?: EtrnService;
  /** AutoTURN for held domains: told the client's address when a session on an `smtp` listener ends (absent: none). */
  readonly autoturn?: AutoTurnHook;
  /** The current STARTTLS context (undefined = no STARTTLS); asked per connection, so a reload applies. */
  readonly tls?: () => SecureContext | undefined;
  readonly limits?: Partial<SessionLimits>;
  readonly maxConnections?: number;
  readonly maxPerIp?: number;
  /**
   * Another process admits the connections (root, across several SMTP processes: src/start/privchild.ts): no limits
   * here, and stress mode is what setStress says.
   */
  readonly admittedElsewhere?: boolean;
  /**
   * Another process counts the connections this one accepts (root, across several SMTP processes accepting on one
   * socket): each connection is admitted by asking, before its session starts; as with admittedElsewhere, no limits
   * here and stress mode is what setStress says.
   */
  readonly admit?: (ip: string) => Promise<Admitted>;
  readonly clock?: () => Date;
  readonly isLocalIp?: (ip: string) => boolean;
  readonly log?: SessionEventLog;
  /** Conformance runner only: the whole session environment, instead of socket addresses and tcp.smtp. */
  readonly envFor?: (socket: Socket) => SessionEnv;
  readonly onSession?: (summary: SessionSummary, env: SessionEnv) => void;
}

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

/** A listener's connection limits (maxconn=, maxperip=) and its stress cap in ms (stresstimeout=; 0: off). */
export function listenerLimits(
  spec: ListenerSpec,
  defaults: { readonly maxConnections?: number; readonly maxPerIp?: number } = {},
): { readonly maxConnections: number; readonly maxPerIp: number; readonly stressMs: number } {
  return {
    maxConnections: Number(spec.options['maxconn'] ?? defaults.maxConnections ?? 100),
    maxPerIp: Number(spec.options['maxperip'] ?? defaults.maxPerIp ?? 20),
    stressMs: Number(spec.options['stresstimeout'] ?? 10) * 1000,
  };
}

/** What a client over maxconn= or maxperip= is told. */
export function tooManyReply(why: 'maxconn' | 'maxperip'): string {
  return renderReply(why === 'maxconn' ? R.tooManyConnections : R.tooManyFromIp, false);
}

/** One smtp or submission listener: src/tcpserver's listening socket with an SMTP session per connection. */
export class SmtpListener {
  /** Its first bytes are the 220 greeting, in plain text (src/start/child-common.ts ServedListener). */
  readonly greets = true;
  private readonly tcp: TcpServer;
  private readonly limits: SessionLimits;
  private readonly isLocalIp: (ip: string) => boolean;
  private readonly authThrottle: LoginAttempts;
  private readonly rbl: RblConfig | undefined;
  private readonly stress: ListenerStress;
  /**
   * Once it listens: its `address:port` for the log, and the local address every connection has when it is bound to
   * one address (not 0.0.0.0 or ::). Kept, because each look at the listener's address asks the kernel (getsockname).
   */
  private bound:
    { readonly label: string; readonly local?: { readonly ip: string; readonly port: string } } | undefined;

  constructor(
    readonly spec: ListenerSpec,
    private readonly deps: SmtpServerDeps,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits, ...numericOptions(spec.options) };
    this.authThrottle = deps.authThrottle ?? new LoginThrottle();
    this.rbl = rblConfigOf(spec.options, deps.dns);
    const ips = hostIps();
    this.isLocalIp = deps.isLocalIp ?? ((ip) => ips.has(ip));
    const log = deps.log ?? (() => undefined);
    const limits = listenerLimits(spec, deps);
    const here = deps.admittedElsewhere !== true && deps.admit === undefined;
    this.stress = new ListenerStress(here ? limits.maxConnections : Infinity, limits.stressMs, (on, n) =>
      log('smtp.stress', { listener: this.label, on, connections: n }),
    );
    this.tcp = new TcpServer({
      maxConnections: here ? limits.maxConnections : Infinity,
      maxPerIp: here ? limits.maxPerIp : Infinity,
      // paused: commands are read one line at a time (src/lineio); half-open: replies to pipelined commands then EOF
      paused: true,
      halfOpen: true,
      tooMany: (ip, why) => {
        log('smtp.refused', { ip, why, listener: this.label });
        this.stress.update(this.tcp.connections);
        return tooManyReply(why);
      },
      open: (socket, ip) => this.open(socket, ip),
      ...(deps.admit ? { admit: deps.admit } : {}),
      acceptFailed: (err) =>
        log('smtp.error', { listener: `${spec.host}:${spec.port}`, error: `accept failed: ${err.message}` }),
    });
  }

  /**
   * Binds spec.host:spec.port, or takes over an already bound socket (`handle`: what a privileged parent bound and
   * passed, a Server or src/tcpserver's bindShared handle); the connections are then accepted and served here with
   * this listener's options (half-open, paused on connect).
   */
  listen(handle?: object): Promise<AddressInfo> {
    return (handle ? this.tcp.listen(handle) : this.tcp.listen(this.spec.port, this.spec.host)).then(this.listening);
  }

  /** Accepts on a socket root bound and sent (src/tcpserver's bindShared; src/start/child-common.ts listenOn). */
  listenOn(handle: object): Promise<AddressInfo> {
    return this.tcp.listen(handle).then(this.listening);
  }

  private readonly listening = (a: AddressInfo): AddressInfo => {
    const any = a.address === '0.0.0.0' || a.address === '::';
    this.bound = {
      label: `${a.address}:${a.port}`,
      ...(any ? {} : { local: { ip: plainIp(a.address), port: String(a.port) } }),
    };
    return a;
  };

  /** Serves a connection accepted elsewhere (a parent's socket passed with child.send('socket', s)). */
  adopt(socket: Socket): void {
    this.tcp.adopt(socket);
  }

  get address(): AddressInfo | null {
    return this.tcp.address;
  }

  get active(): number {
    return this.tcp.connections;
  }

  /** Stress mode as the process that admits the connections says (admittedElsewhere). */
  setStress(on: boolean): void {
    this.stress.set(on);
  }

  /** Stops accepting; waits up to graceMs for sessions to end, then cuts the rest (never mid-commit: 250 follows commit). */
  close(graceMs: number): Promise<void> {
    return this.tcp.close(graceMs);
  }

  /** `address:port` of the listener, for the log: as it listens, or as configured before that (or when it adopts). */
  private get label(): string {
    return this.bound?.label ?? `${this.spec.host}:${this.spec.port}`;
  }

  private open(socket: Socket, ip: string): Served | Refusal {
    const log = this.deps.log ?? (() => undefined);
    const label = this.label;
    // Every reply is small and the client waits for it: with Nagle on, a reply written in two parts waits for the
    // client's delayed ACK (40 ms on Linux) — the same reason src/remote's client and pop3d turn it off.
    socket.setNoDelay(true);
    let control: Control;
    let env: SessionEnv;
    try {
      control = this.deps.controlFor();
      if (this.deps.envFor) env = this.deps.envFor(socket);
      else {
        const built = this.buildEnv(socket, ip, control);
        if (built === 'deny') {
          log('smtp.refused', { ip, why: this.spec.options['tcprules'] ?? 'tcp.smtp', listener: label });
          return { refuse: renderReply(R.denied, false) };
        }
        env = built;
      }
    } catch (err) {
      // control/me or the tcp rules cannot be read (mode 000, a directory, a loop): this client gets qmail's 421,
      // the process and its other sessions go on (it used to throw out of the connection handler and end them all).
      log('smtp.error', { ip, error: `unable to read controls: ${errText(err)}` });
      return { refuse: renderReply(R.controls, false) };
    }
    log('smtp.connect', { ip, listener: label, kind: this.spec.kind });
    this.stress.update(this.tcp.connections + 1); // this one is counted once open returns
    let tls: SecureContext | undefined;
    try {
      tls = this.deps.tls?.();
    } catch (err) {
      log('smtp.error', { ip, error: `STARTTLS disabled: ${errText(err)}` });
    }
    const session: SessionControl = {};
    const done = runSession(
      socket,
      {
        control,
        env,
        tls,
        queue: this.deps.queue,
        filter: this.deps.filter,
        kind: this.spec.kind,
        limits: this.limits,
        stress: this.stress,
        authenticator: this.deps.authenticator ?? NO_DIRECTORY,
        authThrottle: this.authThrottle,
        recipients: this.deps.recipients,
        senders: this.deps.senders,
        etrn: this.deps.etrn,
        rbl: this.rbl,
        senderAuth: this.spec.options['senderauth'] !== 'off',
        checker: this.deps.checker,
        checkPolicy: checkPolicyOf(this.spec),
        listener: `${this.spec.host}:${this.spec.port}`,
        ...(this.spec.options['queue'] !== undefined ? { listenerQueue: this.spec.options['queue'] } : {}),
        clock: this.deps.clock ?? (() => new Date()),
        isLocalIp: this.isLocalIp,
        log,
      },
      session,
    )
      .then((summary) => {
        this.deps.onSession?.(summary, env);
      })
      .finally(() => this.stress.update(this.tcp.connections - 1))
      .catch((err: unknown) => {
        log('smtp.error', { ip, error: errText(err) });
        socket.destroy();
      })
      .finally(() => this.sessionEnded(ip));
    return { done, shutdown: () => session.shutdown?.() };
  }

  /** AutoTURN: only `smtp` listeners (mail from other servers); the hook starts its work and returns at once. */
  private sessionEnded(ip: string): void {
    if (this.spec.kind !== 'smtp' || this.deps.autoturn === undefined) return;
    try {
      this.deps.autoturn.sessionEnded(ip);
    } catch (err) {
      (this.deps.log ?? (() => undefined))('smtp.error', { ip, error: `autoturn: ${errText(err)}` });
    }
  }

  /** Production environment: addresses of the socket, TCPLOCALHOST = me, listener options, then tcp.smtp. */
  private buildEnv(socket: Socket, ip: string, control: Control): SessionEnv | 'deny' {
    // bound to one address, the listener's own; else each socket's (getsockname)
    const local = this.bound?.local;
    const env: Record<string, string | undefined> = {
      TCPREMOTEIP: ip,
      TCPREMOTEPORT: String(socket.remotePort ?? ''),
      TCPLOCALIP: local?.ip ?? plainIp(socket.localAddress),
      TCPLOCALPORT: local?.port ?? String(socket.localPort ?? ''),
      PROTO: 'TCP',
    };
    const me = control.me();
    if (me !== null) env['TCPLOCALHOST'] = me;
    const db = this.spec.options['databytes'];
    if (db !== undefined) env['DATABYTES'] = db;
    // The listener's own policy (docs/LISTENERS.md), as environment: a tcp.smtp rule may still override it per client.
    const o = this.spec.options;
    if (o['rcpthosts'] !== undefined) env['QUAIL_RCPTHOSTS'] = o['rcpthosts'];
    if (o['auth'] !== undefined) env['QUAIL_AUTH'] = o['auth'];
    if (o['tls'] === 'required') env['QUAIL_TLS'] = 'required';
    if (o['tarpitcount'] !== undefined) env['TARPITCOUNT'] = o['tarpitcount'];
    if (o['tarpitdelay'] !== undefined) env['TARPITDELAY'] = o['tarpitdelay'];
    if (o['greetdelay'] !== undefined) env['GREETDELAY'] = o['greetdelay'];
    // filter=PROGRAM: QMAILQUEUE for every client of the listener (QMAILQUEUE="" in its tcp.smtp exempts one)
    if (o['filter'] !== undefined) env['QMAILQUEUE'] = o['filter'];
    // `tcprules=FILE`: the listener's own rules instead of tcp.smtp (missing: no rules, as tcpserver without its cdb)
    const text = o['tcprules'] !== undefined ? control.named(o['tcprules']) : control.raw('tcp.smtp');
    if (text !== null) {
      const rule = matchTcpRules(parseTcpRulesKept(text), ip);
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
  set('maxUnsent', n('maxunsent'));
  return out;
}

/** rblsmtpd's -t default and quail's lookup deadline default (seconds). */
const RBL_TIMEOUT = 60;
const RBL_DEADLINE = 60;
/** Upper bounds (seconds): the limited conversation an hour, the lookups five minutes (a client's greeting wait). */
const RBL_MAX_TIMEOUT = 3600;
const RBL_MAX_DEADLINE = 300;

/**
 * The listener's `rbl=`/`rblallow=` sources (src/start joins them, in line order, as `base +base ...`: `+` =
 * anti-list) and their settings; undefined when it has none.
 */
function rblConfigOf(o: Readonly<Record<string, string>>, dns: (() => RblResolver) | undefined): RblConfig | undefined {
  const list = (o['rbl'] ?? '').split(/\s+/).filter((w) => w !== '');
  if (list.length === 0) return undefined;
  const sources: RblSource[] = list.map((w) =>
    w.startsWith('+') ? { base: w.slice(1), allow: true } : { base: w, allow: false },
  );
  const num = (k: string, d: number): number => (o[k] !== undefined && /^\d+$/.test(o[k]) ? Number(o[k]) : d);
  return {
    sources,
    bounce: o['rblbounce'] === 'on',
    failClosed: o['rblfail'] === 'closed',
    // capped: a timer past 2^31 ms would fire at once (node), and no client waits longer than these anyway
    timeoutSeconds: Math.min(num('rbltimeout', RBL_TIMEOUT), RBL_MAX_TIMEOUT),
    deadlineMs: Math.min(num('rbldeadline', RBL_DEADLINE), RBL_MAX_DEADLINE) * 1000,
    resolver: dns ?? (() => new dnsPromises.Resolver({ timeout: 2000, tries: 2 })),
  };
}

/** `authcheck=off|header|reject`; default `header` on smtp listeners (mail from other servers), `off` on submission. */
function checkPolicyOf(spec: ListenerSpec): CheckPolicy {
  const v = spec.options['authcheck'];
  if (v === 'off' || v === 'header' || v === 'reject') return v;
  return spec.kind === 'smtp' ? 'header' : 'off';
}
