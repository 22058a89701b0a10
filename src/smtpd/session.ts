// One SMTP session: qmail-smtpd's command rules (docs/QMAIL.md B) with ESMTP, STARTTLS, AUTH and limits.
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import type { SecureContext } from 'node:tls';
import type { Control } from '../control/index.js';
import type { QueueStore } from '../queue/types.js';
import type { QueueFilter } from './filter.js';
import { MAX_AUTH_FAILURES, type LoginAttempts } from '../throttle/index.js';
import type { Authenticator, RecipientCheck, SenderCheck } from './auth.js';
import type { CheckPolicy, MessageChecker } from './check.js';
import { loadPolicy, type Policy, type SessionEnv } from './policy.js';
import { protocolName } from './received.js';
import { Reader } from '../lineio/index.js';
import type { StressGauge } from '../lineio/index.js';
import { R, renderReply, type Reply } from './replies.js';
import { verbHandler } from './session-verbs.js';
import type { EtrnService } from './etrn.js';
import { beforeGreeting } from './pregreet.js';
import type { RblConfig } from './rbl.js';

export interface SessionLimits {
  /** Longest command line in bytes (RFC 5321 4.5.3.1.4 asks for at least 512). */
  readonly maxLine: number;
  /** Recipients per message (RFC 5321 4.5.3.1.8: at least 100). */
  readonly maxRcpt: number;
  /** Bad commands before each further error reply is delayed (tarpit). */
  readonly tarpitAfter: number;
  readonly tarpitDelayMs: number;
  /** Bad commands before the session is closed with 421. */
  readonly maxErrors: number;
  /**
   * Commands in a row that move no mail forward (NOOP, RSET, VRFY, HELP, HELO/EHLO, and any refused or unknown
   * command) before the session is closed with 421: a NOOP flood holds a connection slot as well as errors do.
   */
  readonly maxNoop: number;
  /**
   * Mail transactions (accepted MAILs) in a row without a message accepted with 250 after DATA, before the next MAIL
   * is answered with 421: MAIL counts as progress for maxNoop, so MAIL/RSET, MAIL/RCPT/RSET or MAIL with refused
   * recipients would otherwise hold the connection for ever. 0 = no limit.
   */
  readonly maxUnsent: number;
  /** Failed AUTH attempts in one session before it is closed with 421 (as POP3 closes after three). */
  readonly maxAuthFailures: number;
  /** Seconds allowed for a TLS handshake. */
  readonly tlsTimeoutSeconds: number;
}

export const DEFAULT_LIMITS: SessionLimits = {
  maxLine: 4096,
  maxRcpt: 1000,
  tarpitAfter: 10,
  tarpitDelayMs: 1000,
  maxErrors: 30,
  maxNoop: 20,
  maxUnsent: 20,
  maxAuthFailures: MAX_AUTH_FAILURES,
  tlsTimeoutSeconds: 60,
};

/** The events an SMTP listener and its sessions log (src/start's catalogue documents each; `smtpd.*` is the process). */
export type SmtpEventName =
  | 'smtp.connect'
  | 'smtp.refused'
  | 'smtp.tls'
  | 'smtp.auth'
  | 'smtp.reject'
  | 'smtp.queued'
  | 'smtp.checked'
  | 'smtp.queue-failed'
  | 'smtp.error'
  | 'smtp.close'
  | 'smtp.rbl'
  | 'smtp.stress';

export type SessionEventLog = (event: SmtpEventName, fields: Readonly<Record<string, unknown>>) => void;

export interface SessionDeps {
  readonly control: Control;
  readonly queue: Pick<QueueStore, 'inject'>;
  /** QMAILQUEUE in the session environment: the program gets the message instead of `queue` (absent: 451). */
  readonly filter?: QueueFilter | undefined;
  /** tcpserver-style environment: TCPREMOTEIP, TCPLOCALHOST, RELAYCLIENT, DATABYTES ... */
  readonly env: SessionEnv;
  /** submission: MAIL needs AUTH (RFC 6409 4.3). */
  readonly kind: 'smtp' | 'submission';
  /** Present = STARTTLS offered. */
  readonly tls?: SecureContext | undefined;
  readonly authenticator: Authenticator;
  /** Failed-AUTH slowdown per client address and login (shared by the listener's sessions, as POP3's). */
  readonly authThrottle: LoginAttempts;
  /**
   * After AUTH, MAIL FROM must be an address the login may use (`senders`), unless the listener says
   * `senderauth=off`. Absent: true.
   */
  readonly senderAuth?: boolean;
  /** The listener's configured `HOST:PORT` (what `listener` rules of control/queuerules match). */
  readonly listener?: string;
  /** The listener's `queue=` option: its messages join that queue before any rule is tried. */
  readonly listenerQueue?: string;
  /** Which senders a login may use; absent: its own address only (OWN_ADDRESS_ONLY). */
  readonly senders?: SenderCheck | undefined;
  /** RCPT-time mailbox check for directory-managed domains; absent = none (qmail's behaviour). */
  readonly recipients?: RecipientCheck | undefined;
  /** Inbound SPF/DKIM/DMARC checks (filled in by start); used when `checkPolicy` is not 'off'. */
  readonly checker?: MessageChecker | undefined;
  /** The listener's `authcheck=`; absent = off. */
  readonly checkPolicy?: CheckPolicy | undefined;
  /** ETRN (RFC 1985) for held domains; absent = 502 as qmail-smtpd. */
  readonly etrn?: EtrnService | undefined;
  /** The listener's DNS blocklists (`rbl=`, rblsmtpd's rules); absent = none, and RBLSMTPD is not read. */
  readonly rbl?: RblConfig | undefined;
  readonly limits: SessionLimits;
  /** The listener's stress mode (src/lineio stress.ts): shorter waits while it is near its connection limit. */
  readonly stress?: StressGauge | undefined;
  readonly clock: () => Date;
  readonly isLocalIp: (ip: string) => boolean;
  readonly log: SessionEventLog;
}

export type EndReason =
  | 'quit'
  | 'eof'
  | 'timeout'
  | 'bare-lf'
  | 'too-many-errors'
  | 'no-progress'
  | 'no-message'
  | 'auth-failures'
  | 'no-controls'
  | 'tls-failed'
  | 'rbl'
  | 'pre-greet'
  | 'not-reading'
  | 'shutdown';

/** What a verb handler tells the command loop: go on, or end the session for this reason. */
export type Step = 'continue' | EndReason;

export interface SessionSummary {
  /** qmail-smtpd's exit status: 0 after QUIT; 1 at end of input (die_read), after a timeout, bare LF or a refused start. */
  readonly exit: 0 | 1;
  readonly reason: EndReason;
  readonly messages: number;
}

export interface Transaction {
  readonly sender: string;
  readonly recipients: string[];
  readonly badSender: boolean;
  readonly size?: number;
}

/** The session state the verb handlers share. */
export class Session {
  out: Writable;
  readonly reader: Reader;
  policy!: Policy;
  helo: string | undefined;
  ehlo = false;
  secure = false;
  authUser: string | undefined;
  /** An authenticated client may relay unless its directory entry says no-relay. */
  authRelay = false;
  authFailures = 0;
  mail: Transaction | undefined;
  errors = 0;
  /** Commands in a row that moved no mail forward (limits.maxNoop). */
  stalled = 0;
  messages = 0;
  /** Mail transactions begun (MAIL accepted) since the last message accepted, or since the start (limits.maxUnsent). */
  unsent = 0;
  /** The server is stopping (runSession's SessionControl.shutdown): the next wait for a command becomes a 421. */
  stopping = false;

  constructor(
    readonly socket: Socket,
    readonly deps: SessionDeps,
  ) {
    this.out = socket;
    this.reader = new Reader(socket);
  }

  get timeoutMs(): number {
    return this.policy.timeoutSeconds * 1000;
  }

  get remoteIp(): string {
    return this.deps.env['TCPREMOTEIP'] ?? 'unknown';
  }

  /**
   * AUTH is offered on TLS connections only, unless tcp.smtp gives the client QUAIL_CLEARAUTH="1". No exemption for
   * loopback: a proxy, a tunnel or a port forward makes a far client's clear-text password arrive from 127.0.0.1.
   */
  get authAllowed(): boolean {
    return this.policy.auth !== 'off' && (this.secure || this.policy.clearAuth);
  }

  get protocol(): ReturnType<typeof protocolName> {
    return protocolName(this.ehlo, this.secure, this.authUser !== undefined);
  }

  send(r: Reply): void {
    if (this.out.writable) this.out.write(Buffer.from(renderReply(r, this.ehlo), 'latin1'));
  }

  sendRaw(text: string): void {
    if (this.out.writable) this.out.write(Buffer.from(text, 'latin1'));
  }

  /** Counts a client error; past the tarpit threshold each error reply is delayed. Anything but 'continue' = close now. */
  async error(r: Reply): Promise<Step> {
    this.errors++;
    if (this.errors >= this.deps.limits.maxErrors) {
      this.send(R.tooManyErrors);
      return 'too-many-errors';
    }
    if (!this.stall()) return 'no-progress';
    const over = this.errors - this.deps.limits.tarpitAfter;
    if (over > 0) await sleep(Math.min(over, 10) * this.deps.limits.tarpitDelayMs);
    this.send(r);
    return 'continue';
  }

  /** One more command that moved no mail forward; past limits.maxNoop the 421 is sent and false returned. */
  stall(): boolean {
    if (++this.stalled <= this.deps.limits.maxNoop) return true;
    this.deps.log('smtp.refused', { ip: this.remoteIp, why: 'no-progress', commands: this.stalled });
    this.send(R.noProgress);
    return false;
  }

  /**
   * Before a MAIL: false (the 421 sent) when limits.maxUnsent transactions in a row ended without a message accepted.
   * Checked before the MAIL's own checks, so a client cut off costs no further sender or directory lookups.
   */
  mayBeginMail(): boolean {
    const max = this.deps.limits.maxUnsent;
    if (max === 0 || this.unsent < max) return true;
    this.deps.log('smtp.refused', { ip: this.remoteIp, why: 'no-message', transactions: this.unsent });
    this.send(R.noMessage);
    return false;
  }

  /** MAIL or RCPT accepted, DATA started, AUTH or STARTTLS done: the session is doing something. */
  progress(): void {
    this.stalled = 0;
  }

  /** RSET, HELO/EHLO and STARTTLS forget the current MAIL (B.6). */
  reset(): void {
    this.mail = undefined;
  }
}

const DRAIN_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Filled by runSession: how the listener asks the session to end when the server stops. */
export interface SessionControl {
  /**
   * The server is stopping: a session waiting for a command gets `421 server shutting down` at once and ends; one
   * busy (a command under way, a message arriving) finishes that first, then gets the 421 instead of its next wait.
   */
  shutdown?: () => void;
}

/** Runs one session on a connected socket until QUIT, EOF, timeout or a fatal error; never throws. */
export async function runSession(
  socket: Socket,
  deps: SessionDeps,
  control: SessionControl = {},
): Promise<SessionSummary> {
  const s = new Session(socket, deps);
  let waitingForCommand = false;
  control.shutdown = (): void => {
    s.stopping = true;
    if (waitingForCommand) s.reader.setCap(0); // ends the wait now; the loop tells the client
  };
  deps.stress?.join(s.reader);
  // The 421 of a stop: the cap that ended the wait is lifted first, or the drain after it (done) would cut the
  // connection before the reply had left.
  const shutDown = (): SessionSummary => {
    s.reader.setCap(undefined);
    s.send(R.shuttingDown);
    return done('shutdown');
  };
  const done = (reason: EndReason): SessionSummary => {
    deps.stress?.leave(s.reader);
    if (reason === 'quit' && s.out === s.socket && s.socket.writableLength === 0) {
      // 221 is in the kernel: close now, as qmail-smtpd and Postfix's smtpd do. Many clients close right after sending
      // QUIT without reading the 221 (smtp-source does), so a shutdown and a read for their EOF met a reset instead:
      // a failed shutdown, then a read error whose stack trace Node builds, per session (docs/PERFORMANCE.md).
      s.socket.destroy();
    } else {
      if (!s.out.destroyed) s.out.end();
      void drain(s);
    }
    const exit = reason === 'quit' ? 0 : 1; // qmail-smtpd: _exit(0) in QUIT only; end of input is die_read()
    deps.log('smtp.close', { ip: s.remoteIp, reason, messages: s.messages });
    return { exit, reason, messages: s.messages };
  };
  const loaded = loadPolicy(deps.control, deps.env, deps.isLocalIp);
  if (!loaded.ok) {
    deps.log('smtp.error', { ip: s.remoteIp, error: loaded.reason });
    s.send(R.controls);
    return done('no-controls');
  }
  s.policy = loaded.policy;
  try {
    const first = await beforeGreeting(s, deps.rbl);
    if (first !== 'serve') return done(first);
    s.sendRaw(`220 ${s.policy.greeting} ESMTP\r\n`);
    for (;;) {
      // Replies are written without waiting: a client that pipelines and never reads them would make them pile up
      // in memory without end (a 30-byte EHLO+MAIL pair costs ~250 bytes of replies). Past the socket's high-water
      // mark the next command is read only once the client has taken the replies, so TCP holds it back; one that
      // takes nothing within timeoutsmtpd (or the stress cap, src/lineio stress.ts) is dropped.
      if (s.out.writableNeedDrain && !(await s.reader.until(drained(s.out), s.timeoutMs))) {
        s.out.destroy();
        s.socket.destroy();
        return done('not-reading');
      }
      if (s.stopping) return shutDown();
      waitingForCommand = true;
      const got = await s.reader.line(s.timeoutMs, deps.limits.maxLine);
      waitingForCommand = false;
      if (got === 'eof') return done('eof');
      if (got === 'timeout' && s.stopping) return shutDown();
      if (got === 'timeout') {
        s.send(R.timeout);
        return done('timeout');
      }
      let step: Step;
      if (got === 'too-long') step = await s.error(R.lineTooLong);
      else step = await command(s, got.line.toString('latin1'));
      if (step !== 'continue') return done(step);
    }
  } finally {
    loaded.policy.close(); // morercpthosts.cdb's descriptor, on every way out
  }
}

/**
 * After the last reply: reads and drops what the client still sends until its EOF, so the socket closes. Input
 * left unread (a refused start, a 421 in mid-session) would keep it half-open for good: a descriptor per such
 * session and a listener that never closes. Closing with unread input instead would reset the connection and
 * could lose the last reply, so a client that does not close within 10 s is cut off (as the listener's refusals).
 */
async function drain(s: Session): Promise<void> {
  const deadline = Date.now() + DRAIN_MS;
  for (;;) {
    const left = deadline - Date.now();
    const c = left > 0 ? await s.reader.chunk(left) : 'timeout';
    if (c === 'eof') return;
    if (c === 'timeout') {
      s.socket.destroy();
      return;
    }
  }
}

/** True once `out` has taken its buffered bytes (drain), false when it closes first. */
function drained(out: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean): void => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => finish(true);
    const onClose = (): void => finish(false);
    out.on('drain', onDrain);
    out.on('close', onClose);
  });
}

/** Verbs that never move mail forward (a refused command counts through Session.error). */
const STALLING = new Set(['noop', 'rset', 'vrfy', 'help', 'helo', 'ehlo']);

/** One command line: its verb looked up in the verb table (session-verbs.ts), as pop3d's sessions do theirs. */
async function command(s: Session, line: string): Promise<Step> {
  const fail = (r: Reply): Promise<Step> => s.error(r);
  // A CR left inside a command line (or a NUL) is refused: quail accepts CRLF and, like qmail, bare LF endings.
  if (/[\r\0]/.test(line)) return fail(R.badCommandBytes);
  const sp = line.indexOf(' ');
  const verb = (sp < 0 ? line : line.slice(0, sp)).toLowerCase();
  const arg = sp < 0 ? '' : line.slice(sp + 1).replace(/^ +/, '');
  if (STALLING.has(verb) && !s.stall()) return 'no-progress';
  const handler = verbHandler(verb);
  return handler ? handler(s, arg, fail) : fail(R.unimplemented);
}
