// One POP3 session: the AUTHORIZATION → TRANSACTION → UPDATE state machine over a socket (RFC 1939 section 3).
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { AUTHORIZATION, type Handler } from './commands/authorization.js';
import { TRANSACTION } from './commands/transaction.js';
import { Reader, type StressGauge } from '../lineio/index.js';
import { commandLine } from './lines.js';
import { parseCommand } from './parse.js';
import { wireInto, wireRoom } from './wire.js';
import { acceptTls } from '../tcpserver/index.js';
import type { LoginAttempts } from '../throttle/index.js';
import type {
  Account,
  ClientInfo,
  Mailbox,
  MailboxStore,
  Pop3Authenticator,
  Pop3ClientRules,
  Pop3EventLog,
} from './types.js';

const TERMINATOR = Buffer.from('.\r\n');

/** The process's buffer for small messages (sendStored), while no socket holds it; made at this size or larger. */
let frame: Buffer | undefined;
const FRAME = 16 * 1024;
/** Longest wait for a TLS handshake (RFC 2595 gives none; smtpd allows 60 s as well). */
const HANDSHAKE_MS = 60_000;

export interface SessionConfig {
  readonly authenticator: Pop3Authenticator;
  readonly store: MailboxStore;
  readonly throttle: LoginAttempts;
  /** Present = STLS offered (or, with `implicitTls`, the handshake done on connect). */
  readonly tls?: SecureContext | undefined;
  /** Implicit TLS (port 995): the handshake comes before the greeting. */
  readonly implicitTls: boolean;
  /** USER/PASS and AUTH PLAIN allowed without TLS from any address (default: only after TLS). */
  readonly allowPlaintext: boolean;
  /** Domain for bare login names when the client's rules give none. */
  readonly defaultDomain?: string | undefined;
  readonly idleTimeoutMs: number;
  readonly greeting: string;
  readonly log: Pop3EventLog;
  readonly clock: () => Date;
  /** Failed logins allowed on one connection before it is closed. */
  readonly maxAuthFailures: number;
  /** Unknown or malformed commands allowed before the connection is closed. */
  readonly maxErrors: number;
  /** The listener's stress mode (src/lineio ListenerStress): shorter waits while it is near its connection limit. */
  readonly stress?: StressGauge | undefined;
}

export type EndReason =
  | 'quit'
  | 'eof'
  | 'timeout'
  | 'too-many-errors'
  | 'auth-failures'
  | 'tls-failed'
  | 'write-failed'
  | 'not-reading'
  | 'shutdown';

export interface SessionSummary {
  readonly login?: string | undefined;
  readonly ip: string;
  readonly end: EndReason;
  readonly retrieved: number;
  readonly deleted: number;
}

/** What the command handlers see: the state, the I/O, the configuration. */
export class Session {
  state: 'authorization' | 'transaction' = 'authorization';
  /** USER given, waiting for PASS. */
  user: string | undefined;
  account: Account | undefined;
  mailbox: Mailbox | undefined;
  readonly marked = new Set<number>();
  retrieved = 0;
  deleted = 0;
  authFailures = 0;
  end: EndReason | undefined;
  /** Waiting for the next command (safe to drop at shutdown). */
  private waiting = false;
  private stopping = false;
  private out: Writable;
  private readonly reader: Reader;
  private readonly clientInfo: { ip: string; tls: boolean };

  constructor(
    private socket: Socket,
    ip: string,
    readonly config: SessionConfig,
    /** This client's rules (tcp.pop3), read when it connected. */
    readonly rules: Pop3ClientRules = {},
  ) {
    this.out = socket;
    this.reader = new Reader(socket);
    this.clientInfo = { ip, tls: false };
  }

  get client(): ClientInfo {
    return { ...this.clientInfo };
  }

  /**
   * RFC 2595 section 4 / RFC 5034: plaintext credentials only over TLS, unless the listener (`plaintext=allow`) or
   * the client's rule (QUAIL_CLEARAUTH="1" in tcp.pop3) allows them. No implicit exemption for loopback: a proxy
   * or a tunnel makes a far client's clear-text password arrive from 127.0.0.1.
   */
  plaintextAllowed(): boolean {
    return this.clientInfo.tls || this.config.allowPlaintext || this.rules.clearAuth === true;
  }

  /** The domain a bare login name gets: the client's rules first, then the server's. */
  get defaultDomain(): string | undefined {
    return this.rules.defaultDomain ?? this.config.defaultDomain;
  }

  tlsOffered(): boolean {
    return this.config.tls !== undefined && !this.clientInfo.tls;
  }

  /** Writes with backpressure; false when the client has gone. */
  async write(data: string | Buffer): Promise<boolean> {
    if (this.out.destroyed || !this.out.writable) return false;
    if (this.out.write(data)) return true;
    // A client that takes nothing for the idle time is dropped: without a deadline a client that pipelines and never
    // reads held its session (and connection slot) for good, waiting here for a drain that never comes.
    let timer: NodeJS.Timeout | undefined;
    const closed = once(this.out, 'close').then(() => false);
    const drained = once(this.out, 'drain').then(() => true);
    const stuck = new Promise<boolean>(
      (resolve) => (timer = setTimeout(() => resolve(false), this.config.idleTimeoutMs)),
    );
    const ok = await Promise.race([closed, drained, stuck])
      .catch(() => false)
      .finally(() => clearTimeout(timer));
    if (!ok && !this.out.destroyed) {
      this.end ??= 'not-reading';
      this.out.destroy();
      this.socket.destroy();
    }
    return ok;
  }

  reply(line: string): Promise<boolean> {
    return this.write(`${line}\r\n`);
  }

  /** A multi-line response body: lines dot-stuffed, then the terminating "." (RFC 1939 section 3). */
  multiline(first: string, lines: readonly string[]): Promise<boolean> {
    const body = lines.map((l) => (l.startsWith('.') ? `.${l}\r\n` : `${l}\r\n`)).join('');
    return this.write(`${first}\r\n${body}.\r\n`);
  }

  /**
   * A small message as stored: the status line, the message in wire form and the "." built in one buffer and sent in
   * one write. The buffer is the process's own, taken again by the next message once the kernel took this one whole
   * (nothing left queued in the socket); otherwise it stays with the socket and the next message gets a new one. No
   * buffer is made per message, nor copied twice (docs/PERFORMANCE.md, POP3).
   */
  sendStored(first: string, stored: Buffer, bodyLines?: number): Promise<boolean> {
    const head = first.length + 2;
    const need = head + wireRoom(stored.length) + TERMINATOR.length;
    const out = frame !== undefined && frame.length >= need ? frame : Buffer.allocUnsafeSlow(Math.max(need, FRAME));
    frame = undefined; // lent to this write
    out.write(`${first}\r\n`, 0, 'latin1');
    let end = wireInto(stored, bodyLines, out, head);
    end += TERMINATOR.copy(out, end);
    const sent = this.write(out.subarray(0, end));
    // write() has handed the bytes to the socket by now: with nothing queued, the kernel has them all
    if (this.out.writableLength === 0) frame = out;
    return sent;
  }

  /** Streams a message already converted to wire form, then the terminating ".". */
  async stream(first: string, body: Readable): Promise<boolean> {
    // The status line goes out with the first chunk and the "." with the last.
    let held: Buffer = Buffer.from(`${first}\r\n`, 'latin1');
    try {
      for await (const chunk of body) {
        if (!(await this.write(held))) {
          body.destroy();
          return false;
        }
        held = chunk as Buffer;
      }
    } catch (err) {
      // A read error halfway: the client cannot tell a short message from a whole one, so end the session.
      this.config.log('pop3.error', { login: this.account?.login, ip: this.clientInfo.ip, error: String(err) });
      this.socket.destroy();
      return false;
    }
    return this.write(Buffer.concat([held, TERMINATOR]));
  }

  /** RFC 2595 section 4: the handshake starts after "+OK"; bytes pipelined before it are dropped. */
  async startTls(): Promise<boolean> {
    const context = this.config.tls;
    if (!context) return false;
    this.reader.discard();
    // A handshake that never comes (silence after STLS or on the implicit-TLS port, a ClientHello cut halfway)
    // ends at the idle timeout (60 s at most), as smtpd's: it held the session, and a connection slot, for good.
    // Waited for as a read is, so under stress the listener's cap bounds it too.
    const tls = await acceptTls(
      this.socket,
      context,
      Math.min(this.config.idleTimeoutMs, HANDSHAKE_MS),
      undefined,
      (h, ms) => this.reader.until(h, ms),
    );
    if (tls === undefined) return false;
    this.reader.replace(tls);
    this.out = tls;
    this.socket = tls;
    this.clientInfo.tls = true;
    return true;
  }

  /** Server shutdown: drop the connection now if idle, else after the command under way (UPDATE finishes). */
  shutdown(): void {
    this.stopping = true;
    if (this.waiting) this.socket.destroy();
  }

  /** A continuation line (SASL); undefined when the client went away or idled (the session then ends). */
  async readLine(): Promise<string | undefined> {
    const line = await commandLine(this.reader, this.config.idleTimeoutMs);
    if (typeof line === 'string') return line;
    if (line.kind === 'too-long') {
      await this.reply('-ERR line too long');
      return undefined;
    }
    this.end = line.kind;
    return undefined;
  }

  /** Runs the session to its end; never throws. */
  async run(): Promise<SessionSummary> {
    this.config.stress?.join(this.reader);
    try {
      if (this.config.implicitTls && !(await this.startTls())) this.end = 'tls-failed';
      else if (!(await this.reply(this.config.greeting))) this.end = 'write-failed';
      let errors = 0;
      while (this.end === undefined) {
        if (this.stopping) {
          this.end = 'shutdown';
          break;
        }
        this.waiting = true;
        const line = await commandLine(this.reader, this.config.idleTimeoutMs);
        this.waiting = false;
        if (typeof line !== 'string') {
          if (this.stopping) this.end = 'shutdown';
          else if (line.kind === 'eof') this.end = 'eof';
          else if (line.kind === 'timeout') {
            await this.reply('-ERR autologout: idle for too long');
            this.end = 'timeout';
          } else {
            await this.reply('-ERR line too long');
            if (++errors >= this.config.maxErrors) this.end = 'too-many-errors';
          }
          continue;
        }
        const cmd = parseCommand(line);
        // the verb table of the state (commands/), as smtpd's session looks its verbs up (session-verbs.ts)
        const table = this.state === 'authorization' ? AUTHORIZATION : TRANSACTION;
        const handler: Handler | undefined = cmd && Object.hasOwn(table, cmd.verb) ? table[cmd.verb] : undefined;
        if (!cmd || !handler) {
          await this.reply(cmd && isKnownVerb(cmd.verb) ? '-ERR not in this state' : '-ERR unknown command');
          if (++errors >= this.config.maxErrors) {
            await this.reply('-ERR too many errors, closing');
            this.end = 'too-many-errors';
          }
          continue;
        }
        await handler(this, cmd);
      }
    } catch (err) {
      this.config.log('pop3.error', { login: this.account?.login, ip: this.clientInfo.ip, error: String(err) });
      this.end ??= 'write-failed';
    } finally {
      this.config.stress?.leave(this.reader);
      this.mailbox?.close(); // a dropped connection deletes nothing (RFC 1939 section 6)
      if (!this.socket.destroyed) {
        this.socket.end();
        void drain(this.reader, this.socket);
      }
    }
    const summary: SessionSummary = {
      login: this.account?.login,
      ip: this.clientInfo.ip,
      end: this.end ?? 'eof',
      retrieved: this.retrieved,
      deleted: this.deleted,
    };
    if (this.account) this.config.log('pop3.session', { ...summary });
    return summary;
  }
}

/**
 * After the last answer: reads and drops what the client still sends until its EOF, then the socket closes.
 * Input left unread (a line after QUIT, after "too many errors" or the autologout) kept the socket, and its
 * descriptor, open for good; a client that does not close within 10 s is cut off (as smtpd does).
 */
async function drain(reader: Reader, socket: Socket): Promise<void> {
  const deadline = Date.now() + DRAIN_MS;
  for (;;) {
    const left = deadline - Date.now();
    const c = left > 0 ? await reader.chunk(left) : 'timeout';
    if (c === 'eof') return;
    if (c === 'timeout') return void socket.destroy();
  }
}

const DRAIN_MS = 10_000;

function isKnownVerb(verb: string): boolean {
  return Object.hasOwn(AUTHORIZATION, verb) || Object.hasOwn(TRANSACTION, verb);
}
