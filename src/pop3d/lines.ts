// Pull-style command-line reading for POP3: one line at a time, idle timeout, overlong lines, discard before TLS.
import type { Readable } from 'node:stream';

export type LineResult = string | { readonly kind: 'eof' | 'timeout' | 'too-long' };

const LF = 0x0a;

/**
 * Reads only when the session asks (paused stream), so a pipelining client is held back by TCP and bytes sent
 * before a TLS handshake can be dropped (RFC 2595 section 4). Lines are returned without CRLF/LF, as latin1.
 */
export class LineReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly onData = (): void => this.wake?.();
  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake?.();
  };

  constructor(
    private stream: Readable,
    /** RFC 2449 section 4: commands are at most 255 octets including CRLF; we allow some slack. */
    private readonly maxLine = 1024,
  ) {
    this.attach();
  }

  private attach(): void {
    this.stream.on('readable', this.onData);
    this.stream.on('end', this.onEnd);
    this.stream.on('close', this.onEnd);
    this.stream.on('error', this.onEnd);
  }

  private detach(): void {
    this.stream.off('readable', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onEnd);
  }

  /** Continues on another stream (the TLS socket after STLS); anything buffered from before is dropped. */
  replace(stream: Readable): void {
    this.detach();
    this.buf = Buffer.alloc(0);
    this.ended = false;
    this.stream = stream;
    this.attach();
  }

  /** Drops everything received but not yet handled. */
  discard(): void {
    this.buf = Buffer.alloc(0);
    while (this.stream.read() !== null) {
      /* bytes pipelined after STLS must not be processed */
    }
  }

  async line(timeoutMs: number): Promise<LineResult> {
    let timedOut = false;
    let skipping = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.wake?.();
    }, timeoutMs);
    try {
      for (;;) {
        const lf = this.buf.indexOf(LF);
        if (lf >= 0) {
          const raw = this.buf.subarray(0, lf);
          this.buf = this.buf.subarray(lf + 1);
          if (skipping || lf > this.maxLine) return { kind: 'too-long' };
          const end = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.length - 1 : raw.length;
          return raw.subarray(0, end).toString('latin1');
        }
        if (this.buf.length > this.maxLine) {
          skipping = true; // drop what we have and keep dropping to the end of the line
          this.buf = Buffer.alloc(0);
        }
        const c = this.stream.read() as Buffer | string | null;
        if (c !== null) {
          const b = typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
          this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
          continue;
        }
        if (this.ended || this.stream.destroyed) return { kind: 'eof' };
        if (timedOut) return { kind: 'timeout' };
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}
