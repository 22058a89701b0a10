// A minimal SMTP client: replies with their exact text, EHLO keywords, STARTTLS, streamed DATA.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';

/** One SMTP reply: its code and every line without CR/LF (RFC 5321 4.2: `250-` continues, `250 ` ends). */
export interface Reply {
  readonly code: number;
  readonly lines: readonly string[];
}

/**
 * The connection broke or timed out (qmail's "connection died"), or quail dropped it because the server broke the
 * protocol's limits (`detail` says how, for the report).
 */
export class Dropped extends Error {
  constructor(
    cause?: unknown,
    readonly detail?: string,
  ) {
    super(detail ?? 'connection died', { cause });
    this.name = 'Dropped';
  }
}

/**
 * Limits on what a server may send (RFC 5321 4.5.3.1.5 allows 512 octets a reply line; these are generous). Past
 * them the connection is dropped and the delivery deferred: a hostile server that sends a line without end, or a
 * multiline reply without end, would otherwise grow the sending process's memory until it died, taking every other
 * delivery with it. Exported for the tests.
 */
export const REPLY_LIMITS = {
  /** Bytes of one reply line, without its CRLF. */
  lineBytes: 4096,
  /** Lines of one reply (an EHLO reply has a dozen or two). */
  replyLines: 500,
} as const;

/** Why no connection was made: qmail-tcpto remembers timeouts only. */
export type ConnectFailure = 'timeout' | 'refused';

/**
 * Opens a TCP connection within `timeoutMs`, from `localAddress` when given (control/outgoingip).
 * Resolves the socket, or why none could be made.
 */
export function openSocket(
  ip: string,
  port: number,
  timeoutMs: number,
  localAddress?: string,
): Promise<Socket | ConnectFailure> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port, ...(localAddress !== undefined ? { localAddress } : {}) });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve('timeout');
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(
        err.code === 'ETIMEDOUT' || err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' ? 'timeout' : 'refused',
      );
    });
  });
}

/** EHLO keywords (RFC 5321 4.1.1.1): upper-cased keyword → its parameters. */
export function ehloKeywords(r: Reply): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of r.lines.slice(1)) {
    const [kw = '', ...params] = l.slice(4).trim().split(/\s+/);
    if (kw !== '') out.set(kw.toUpperCase(), params.join(' '));
  }
  return out;
}

/** Reads replies and writes commands on a connected socket; every wait is bounded by `timeoutMs`. */
export class SmtpClient {
  /** Received bytes after the last complete line (shorter than REPLY_LIMITS.lineBytes). */
  private buf = '';
  /** Complete lines not read yet (bounded: more than one reply's worth breaks the connection). */
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private quitting = false;

  private sock: Socket;

  constructor(
    sock: Socket,
    private readonly timeoutMs: number,
  ) {
    this.sock = sock;
    this.attach(sock);
  }

  /** True once STARTTLS succeeded. */
  get encrypted(): boolean {
    return (this.sock as Partial<TLSSocket>).encrypted === true;
  }

  /** The local address of the connection (for logs and tests). */
  get localAddress(): string | undefined {
    return this.sock.localAddress;
  }

  private readonly onData = (chunk: string): void => {
    if (this.failure) return;
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) >= 0) {
      const line = this.buf + chunk.slice(start, nl);
      this.buf = '';
      start = nl + 1;
      if (line.length > REPLY_LIMITS.lineBytes + 1) return this.tooLong();
      // qmail-remote drops every CR of the reply text.
      this.lines.push(line.replace(/\r/g, ''));
      if (this.lines.length > REPLY_LIMITS.replyLines) return this.tooLong();
    }
    if (start < chunk.length) {
      this.buf += chunk.slice(start);
      if (this.buf.length > REPLY_LIMITS.lineBytes + 1) return this.tooLong();
    }
    this.wake();
  };
  private tooLong(): void {
    this.buf = '';
    this.lines.length = 0;
    this.fail(
      new Dropped(
        undefined,
        `the server sent a reply longer than ${REPLY_LIMITS.lineBytes} bytes a line or ${REPLY_LIMITS.replyLines} lines`,
      ),
    );
  }
  /**
   * Nothing read or written for timeoutMs, or a reply not whole within it. The report stays qmail-remote's exact
   * `connection died` (E.7/E.8: reports are compared byte for byte with qmail's), as for a reset.
   */
  private readonly timedOut = (): void => this.fail(new Dropped('timeout'));
  private readonly onError = (err: Error): void => this.fail(new Dropped(err));
  private readonly onClose = (): void => this.fail(new Dropped('closed'));

  private attach(sock: Socket): void {
    sock.setNoDelay(true); // commands are small and each waits for a reply: Nagle + delayed ACK would add 40 ms
    sock.setEncoding('latin1');
    sock.setTimeout(this.timeoutMs);
    sock.on('data', this.onData);
    sock.on('timeout', this.timedOut);
    sock.on('error', this.onError);
    sock.on('close', this.onClose);
  }

  private detach(sock: Socket): void {
    sock.off('data', this.onData);
    sock.off('timeout', this.timedOut);
    sock.off('error', this.onError);
    sock.off('close', this.onClose);
  }

  /**
   * Upgrades the connection after a 220 to STARTTLS (RFC 3207). Bytes the server sent before the handshake
   * are dropped (RFC 3207 4.2, the STARTTLS injection defence). Throws the TLS error (handshake or
   * certificate) as it is; the socket is then closed.
   */
  async startTls(options: ConnectionOptions): Promise<void> {
    const plain = this.sock;
    this.detach(plain);
    this.lines.length = 0;
    this.buf = '';
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ ...options, socket: plain });
      const bad = (err: Error): void => {
        t.destroy();
        plain.destroy();
        reject(err);
      };
      const slow = (): void => bad(new Error('TLS handshake timed out'));
      t.once('secureConnect', () => {
        t.off('error', bad);
        t.off('timeout', slow);
        resolve(t);
      });
      t.once('error', bad);
      t.setTimeout(this.timeoutMs);
      t.once('timeout', slow);
    });
    this.sock = secure;
    this.attach(secure);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.sock.destroy();
    this.wake();
  }

  private async line(): Promise<string> {
    for (;;) {
      const l = this.lines.shift();
      if (l !== undefined) return l;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /**
   * The next reply; a code that is not a reply code of RFC 5321 4.2 (three digits, the first 2 to 5, then a space, a
   * `-` or the end: not `2500 ok`, `199`, `600` or `25`) counts as 400 (unknown: temporary). The whole reply must come
   * within the timeout, not only each of its bytes: a server that drips one byte at a time cannot keep the delivery.
   */
  async reply(): Promise<Reply> {
    const lines: string[] = [];
    const deadline = setTimeout(this.timedOut, this.timeoutMs);
    try {
      for (;;) {
        const l = await this.line();
        lines.push(l);
        if (l.charAt(3) !== '-') break;
        if (lines.length >= REPLY_LIMITS.replyLines) {
          this.tooLong();
          throw this.failure ?? new Dropped();
        }
      }
    } finally {
      clearTimeout(deadline);
    }
    const first = lines[0] ?? '';
    const code = /^[2-5][0-9]{2}(?:[ -]|$)/.test(first) ? Number(first.slice(0, 3)) : 400;
    return { code, lines };
  }

  /** Writes bytes, waiting for 'drain' when the socket buffer is full (backpressure). */
  async write(data: string | Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        this.sock.off('drain', done);
        this.sock.off('close', done);
        if (this.failure) reject(this.failure);
        else resolve();
      };
      this.sock.on('drain', done);
      this.sock.on('close', done);
    });
  }

  /**
   * Writes commands (one, or a pipelined group), first making sure that nothing of the server's is still unread: a
   * reply that came before the command it would answer (an extra `250` smuggled after MAIL's, the rest of a
   * greeting that was not one reply, more replies than a pipelined group had commands) would be taken as the answer
   * to the next command, and every answer after it would be off by one. The connection is dropped instead.
   */
  async send(commands: string): Promise<void> {
    this.inSync();
    await this.write(commands);
  }

  /** Throws Dropped (and drops the connection) when a reply is waiting that no command asked for yet. */
  inSync(): void {
    if (this.lines.length === 0 && this.buf === '') return;
    this.fail(new Dropped(undefined, 'the server sent a reply to a command not sent yet'));
    throw this.failure ?? new Dropped();
  }

  async command(line: string): Promise<Reply> {
    await this.send(`${line}\r\n`);
    return this.reply();
  }

  /**
   * Sends the message: LF → CRLF, a `.` at the start of a line doubled (RFC 5321 4.5.2), then `.` CRLF.
   * Resolves 'partial' without sending the final dot when the last line has no newline (qmail refuses those).
   * A message in memory goes out in one write with its final dot; a stream chunk by chunk, the dot after.
   */
  async data(message: Readable | Buffer): Promise<'sent' | 'partial'> {
    this.inSync(); // after the 354, nothing: a reply already there answers no command
    const st: StuffState = { atLineStart: true, pendingCR: false };
    if (Buffer.isBuffer(message)) {
      const out = Buffer.allocUnsafe(message.length * 2 + 4 + DOT_CRLF.length);
      const end = stuffEnd(st, out, stuff(message, st, out, 0));
      if (!end.whole) {
        await this.write(out.subarray(0, end.o));
        return 'partial';
      }
      await this.write(out.subarray(0, end.o + DOT_CRLF.copy(out, end.o)));
      return 'sent';
    }
    for await (const chunk of message as AsyncIterable<Buffer>) {
      const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
      await this.write(out.subarray(0, stuff(chunk, st, out, 0)));
    }
    const tail = Buffer.allocUnsafe(2 + DOT_CRLF.length);
    const end = stuffEnd(st, tail, 0);
    if (!end.whole) return 'partial';
    await this.write(tail.subarray(0, end.o + DOT_CRLF.copy(tail, end.o)));
    return 'sent';
  }

  /** False once the connection broke or was closed (an idle pooled connection the server dropped). */
  get alive(): boolean {
    return this.failure === undefined && !this.quitting;
  }

  /** Sends QUIT without waiting for the answer (as qmail-remote does) and closes. */
  quit(): void {
    this.quitting = true;
    if (!this.failure) this.sock.end('QUIT\r\n');
    else this.sock.destroy();
  }

  /** Closes at once, unless QUIT was sent (then the socket closes itself after flushing it). */
  close(): void {
    if (!this.quitting) this.sock.destroy();
  }
}

const DOT_CRLF = Buffer.from('.\r\n');
const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

/** Carried across chunks: whether the next byte starts a line, and a CR whose next byte is still to come. */
interface StuffState {
  atLineStart: boolean;
  pendingCR: boolean;
}

/**
 * DATA's transparency (RFC 5321 4.5.2) for one chunk, into `out` from offset `o` (room for twice the chunk and 2 is
 * enough); returns the offset after the last byte written. As notqmail's qmail-remote (blast): a `.` that starts a
 * line is doubled; LF becomes CRLF and CRLF stays CRLF; a CR before anything else ends the line with CRLF and the byte
 * after it is sent as it is (not looked at as a line's first byte: a `.` there is not doubled, a second CR goes out
 * raw). A line's bytes are copied by a loop that looks only for CR and LF; its start is tested once per line.
 */
function stuff(chunk: Buffer, st: StuffState, out: Buffer, o: number): number {
  let atLineStart = st.atLineStart;
  const n = chunk.length;
  let i = 0;
  if (st.pendingCR && n > 0) {
    // the chunk before ended in a CR
    st.pendingCR = false;
    out[o++] = CR;
    out[o++] = LF;
    if (chunk[0] === LF) atLineStart = true;
    else out[o++] = chunk[0] as number;
    i = 1;
  }
  while (i < n) {
    if (atLineStart && chunk[i] === DOT) out[o++] = DOT;
    atLineStart = false;
    while (i < n) {
      const c = chunk[i] as number;
      if (c === LF) {
        out[o++] = CR;
        out[o++] = LF;
        i++;
        atLineStart = true;
        break;
      }
      if (c === CR) {
        if (i + 1 === n) {
          st.pendingCR = true; // what follows is in the next chunk, or the end of the message
          i++;
          break;
        }
        out[o++] = CR;
        out[o++] = LF;
        const next = chunk[i + 1] as number;
        i += 2;
        if (next === LF) {
          atLineStart = true;
          break;
        }
        out[o++] = next;
        continue;
      }
      out[o++] = c;
      i++;
    }
  }
  st.atLineStart = atLineStart;
  return o;
}

/**
 * The end of the message: a CR still waiting ends its line (qmail-remote's blast meets the end there and sends CRLF);
 * false when the last line has no newline (a partial final line, which qmail refuses).
 */
function stuffEnd(st: StuffState, out: Buffer, o: number): { o: number; whole: boolean } {
  if (st.pendingCR) {
    st.pendingCR = false;
    out[o++] = CR;
    out[o++] = LF;
    st.atLineStart = true;
  }
  return { o, whole: st.atLineStart };
}
