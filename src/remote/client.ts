// A minimal SMTP client for one qmail-remote transaction: replies with their exact text, streamed DATA.
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

/** One SMTP reply: its code and every line without CR/LF (RFC 5321 4.2: `250-` continues, `250 ` ends). */
export interface Reply {
  readonly code: number;
  readonly lines: readonly string[];
}

/** The connection broke or timed out (qmail's "connection died"). */
export class Dropped extends Error {
  constructor(cause?: unknown) {
    super('connection died', { cause });
    this.name = 'Dropped';
  }
}

/** Opens a TCP connection within `timeoutMs`; resolves null when none could be made (refused, timeout). */
export function openSocket(ip: string, port: number, timeoutMs: number): Promise<Socket | null> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(null);
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(null);
    });
  });
}

/** Reads replies and writes commands on a connected socket; every wait is bounded by `timeoutMs`. */
export class SmtpClient {
  private buf = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private quitting = false;

  constructor(private readonly sock: Socket, timeoutMs: number) {
    sock.setEncoding('latin1');
    sock.setTimeout(timeoutMs);
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        // qmail-remote drops every CR of the reply text.
        this.lines.push(this.buf.slice(0, nl).replace(/\r/g, ''));
        this.buf = this.buf.slice(nl + 1);
      }
      this.wake();
    });
    sock.on('timeout', () => this.fail(new Dropped('timeout')));
    sock.on('error', (err) => this.fail(new Dropped(err)));
    sock.on('close', () => this.fail(new Dropped('closed')));
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

  /** The next reply; a code that is not three digits counts as 400 (unknown: temporary). */
  async reply(): Promise<Reply> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line();
      lines.push(l);
      if (l.charAt(3) !== '-') break;
    }
    const first = lines[0] ?? '';
    const code = /^[0-9]{3}/.test(first) ? Number(first.slice(0, 3)) : 400;
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

  async command(line: string): Promise<Reply> {
    await this.write(`${line}\r\n`);
    return this.reply();
  }

  /**
   * Streams the message: LF → CRLF, a `.` at the start of a line doubled (RFC 5321 4.5.2), then `.` CRLF.
   * Resolves 'partial' without sending the final dot when the last line has no newline (qmail refuses those).
   */
  async data(message: Readable): Promise<'sent' | 'partial'> {
    let atLineStart = true;
    for await (const chunk of message as AsyncIterable<Buffer>) {
      const parts: Buffer[] = [];
      let start = 0;
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i];
        if (atLineStart && c === 0x2e) {
          parts.push(chunk.subarray(start, i), DOT);
          start = i;
        }
        if (c === 0x0a) {
          parts.push(chunk.subarray(start, i), CRLF);
          start = i + 1;
          atLineStart = true;
        } else atLineStart = false;
      }
      parts.push(chunk.subarray(start));
      await this.write(Buffer.concat(parts));
    }
    if (!atLineStart) return 'partial';
    await this.write(DOT_CRLF);
    return 'sent';
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

const DOT = Buffer.from('.');
const CRLF = Buffer.from('\r\n');
const DOT_CRLF = Buffer.from('.\r\n');
