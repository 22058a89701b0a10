// The POP3 listener: connection limits per address, plain or implicit TLS, sessions, orderly close.
import type { AddressInfo, Server, Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { MaildirStore } from './maildir.js';
import { Session, type SessionConfig, type SessionSummary } from './session.js';
import { ListenerStress } from '../lineio/index.js';
import { TcpServer, type Refusal, type Served } from '../tcpserver/index.js';
import { LoginThrottle, MAX_AUTH_FAILURES, type LoginAttempts, type ThrottleOptions } from '../throttle/index.js';
import type { MailboxStore, Pop3Authenticator, Pop3ClientRules, Pop3EventLog } from './types.js';

export interface Pop3ServerOptions {
  readonly authenticator: Pop3Authenticator;
  /** Default: a MaildirStore (new/ and cur/ of the account's maildir). */
  readonly store?: MailboxStore;
  /** Key and certificate (PEM; control/servercert.pem holds both, so pass it as both). Absent = no STLS. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer } | undefined;
  /** Implicit TLS on connect (port 995) instead of STLS; needs `tls`. */
  readonly implicitTls?: boolean;
  /** Allow USER/PASS and AUTH PLAIN without TLS from every client (default false: only after TLS). */
  readonly allowPlaintext?: boolean;
  /**
   * Per-connection rules for the client address (deny, clear-text logins, default domain); called at each
   * connection, so a changed file applies to the next one. Throwing = the rules cannot be read: the client gets
   * `-ERR [SYS/TEMP]` and the connection is closed. Default: none (no client may log in before TLS).
   */
  readonly clientRules?: (ip: string) => Pop3ClientRules;
  /** Domain for bare login names (no @ or %) when the client's rules give none. */
  readonly defaultDomain?: string;
  /** Idle timeout in ms (default 10 minutes; RFC 1939 section 3 asks for at least 10). */
  readonly idleTimeoutMs?: number;
  /** Connections at once (default 200) and per client address (default 10). */
  readonly maxConnections?: number;
  /**
   * Stress mode (src/lineio ListenerStress): from 3/4 of maxConnections, every wait for a command ends after this
   * many ms instead of the idle timeout, a command line must arrive whole within it; below half the idle timeout is
   * back. Default 10 s; 0 = off.
   */
  readonly stressTimeoutMs?: number;
  readonly maxPerIp?: number;
  /**
   * Failed-login slowdown (default 1 s doubling up to 30 s, per address and per login): its options, or a table to
   * share with other listeners and services (quail start: one for SMTP, POP3, ODMR and the web admin).
   */
  readonly throttle?: ThrottleOptions | LoginAttempts;
  /** Name in the greeting. */
  readonly hostname?: string;
  readonly log?: Pop3EventLog;
  readonly clock?: () => Date;
  /** Called when a session ends (tests, statistics). */
  readonly onSession?: (summary: SessionSummary) => void;
}

export interface Pop3Server {
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Serves a socket bound by another process (privilege separation: root binds, passes it over IPC). */
  listenOn(handle: Server): Promise<AddressInfo>;
  /** Serves a connection accepted (paused, unread) by the process that bound the listener. */
  adopt(socket: Socket): void;
  /** It speaks first in plain text (`+OK` greeting): not an implicit-TLS port (src/start/child-common.ts). */
  readonly greets: boolean;
  /** New key and certificate (SIGHUP) for later STLS and implicit-TLS sessions; undefined = no STLS. */
  setTls(tls: Pop3ServerOptions['tls']): void;
  address(): AddressInfo | null;
  /**
   * Stops accepting, drops sessions waiting for a command (nothing is deleted), waits for the others (at most
   * graceMs, then their sockets are cut: an UPDATE under way still finishes its deletions).
   */
  close(graceMs?: number): Promise<void>;
  readonly connections: number;
}

export function createPop3Server(opts: Pop3ServerOptions): Pop3Server {
  if (opts.implicitTls && !opts.tls) throw new Error('pop3d: implicit TLS needs a key and certificate');
  const secure = (tls: Pop3ServerOptions['tls']): SecureContext | undefined =>
    tls ? createSecureContext({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' }) : undefined;
  const context = secure(opts.tls);
  const log: Pop3EventLog = opts.log ?? (() => undefined);
  const maxConnections = opts.maxConnections ?? 200;
  const stress = new ListenerStress(maxConnections, opts.stressTimeoutMs ?? 10_000, (on, connections) =>
    log('pop3.stress', { on, connections }),
  );
  const config: { -readonly [K in keyof SessionConfig]: SessionConfig[K] } = {
    authenticator: opts.authenticator,
    store: opts.store ?? new MaildirStore(),
    throttle:
      opts.throttle !== undefined && 'attempt' in opts.throttle ? opts.throttle : new LoginThrottle(opts.throttle),
    tls: context,
    implicitTls: opts.implicitTls ?? false,
    allowPlaintext: opts.allowPlaintext ?? false,
    defaultDomain: opts.defaultDomain,
    idleTimeoutMs: opts.idleTimeoutMs ?? 10 * 60_000,
    greeting: `+OK ${opts.hostname ?? 'quail'} POP3 server ready`,
    log,
    clock: opts.clock ?? (() => new Date()),
    maxAuthFailures: MAX_AUTH_FAILURES,
    maxErrors: 10,
    stress,
  };
  // Before TLS on an implicit-TLS port the client cannot read a reply; it sees the connection close.
  const tell = (text: string): string | undefined => (config.implicitTls ? undefined : text);
  const open = (socket: Socket, ip: string): Served | Refusal => {
    let rules: Pop3ClientRules = {};
    try {
      rules = opts.clientRules?.(ip) ?? {};
    } catch (err) {
      log('pop3.error', { ip, error: `client rules unreadable, connection refused: ${String(err)}` });
      return { refuse: tell('-ERR [SYS/TEMP] unable to read controls, try again later\r\n') };
    }
    if (rules.deny === true) {
      log('pop3.refused', { ip, reason: 'denied' });
      return { refuse: tell('-ERR this host may not use this server\r\n') };
    }
    const session = new Session(socket, ip, config, rules);
    stress.update(tcp.connections + 1); // this one is counted once open returns
    const done = session
      .run()
      .finally(() => stress.update(tcp.connections - 1))
      .then((summary) => opts.onSession?.(summary))
      .catch((err: unknown) => log('pop3.error', { ip, error: String(err) }));
    // A dropped connection deletes nothing, so ending a session waiting for a command is safe; UPDATE finishes.
    return { done, shutdown: () => session.shutdown() };
  };
  const tcp = new TcpServer({
    maxConnections,
    maxPerIp: opts.maxPerIp ?? 10,
    paused: false,
    halfOpen: false,
    noDelay: true,
    tooMany: (ip, why) => {
      log('pop3.refused', { ip, reason: why === 'maxconn' ? 'too-many-connections' : 'too-many-from-address' });
      stress.update(tcp.connections);
      return tell('-ERR [SYS/TEMP] too many connections, try again later\r\n');
    },
    open,
    acceptFailed: (err) => log('pop3.error', { error: `accept failed: ${err.message}` }),
  });
  return {
    listen: (port, host = '127.0.0.1') => tcp.listen(port, host),
    listenOn: (handle) => tcp.listen(handle),
    adopt: (socket) => tcp.adopt(socket),
    greets: !config.implicitTls,
    setTls(tls) {
      if (config.implicitTls && !tls) return; // keep the old certificate rather than break an implicit-TLS port
      config.tls = secure(tls);
    },
    address: () => tcp.address,
    close: (graceMs) => tcp.close(graceMs),
    get connections() {
      return tcp.connections;
    },
  };
}
