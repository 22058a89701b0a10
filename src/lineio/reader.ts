// Pull-style reading of a client stream (SMTP, POP3): chunks and command lines, with an idle timeout and backpressure.
import type { Readable } from 'node:stream';

export type ReadResult = Buffer | 'eof' | 'timeout';
export type LineResult = { readonly line: Buffer; readonly crlf: boolean } | 'eof' | 'timeout' | 'too-long';

/**
 * Reads only when the session asks (paused mode), so a client that pipelines faster than we answer is
 * held back by TCP, and bytes not yet read can be discarded (STARTTLS, RFC 3207 section 4.2).
 */
export class Reader {
  private stream: Readable;
  private pending: Buffer[] = [];
  private ended = false;
  private wake: (() => void) | undefined;
  /** Under stress (setCap): no wait lasts longer than this, the one already under way included. */
  private cap: number | undefined;
  private waitingSince = 0;
  private expired = false;
  private capTimer: NodeJS.Timeout | undefined;
  /**
   * One timer for every wait of chunk(), not one per wait: a wait sets `deadline`, and the timer, armed only when none
   * is due by then, looks at it when it fires (re-arming for what is left, or nothing once the wait is over). A session
   * waits for each of its command lines, so setting and clearing a timer each time was a measurable part of a POP3
   * RETR and of an SMTP transaction (docs/PERFORMANCE.md, twenty-fourth pass). It keeps the process alive only while
   * a wait is under way (ref'd then, unref'd between waits, as a cleared timer was), and is cleared when the stream
   * ends.
   */
  private idleTimer: NodeJS.Timeout | undefined;
  private idleFiresAt = 0;
  /** When the wait under way times out (ms since the epoch); Infinity between waits. */
  private deadline = Infinity;
  private timedOut = false;
  private readonly onReadable = (): void => this.wake?.();
  private readonly onEnd = (): void => {
    this.ended = true;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.wake?.();
  };
  private readonly onIdle = (): void => {
    this.idleTimer = undefined;
    if (this.deadline === Infinity) return;
    const now = Date.now();
    if (now < this.deadline) return this.armIdle(now);
    this.timedOut = true;
    this.wake?.();
  };

  private armIdle(now: number): void {
    clearTimeout(this.idleTimer);
    this.idleFiresAt = this.deadline;
    this.idleTimer = setTimeout(this.onIdle, Math.max(0, this.deadline - now));
  }

  constructor(stream: Readable) {
    this.stream = stream;
    this.attach();
  }

  private attach(): void {
    this.stream.on('readable', this.onReadable);
    this.stream.on('end', this.onEnd);
    this.stream.on('close', this.onEnd);
    this.stream.on('error', this.onEnd);
  }

  private detach(): void {
    this.stream.off('readable', this.onReadable);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.off('error', this.onEnd);
  }

  /** Drops everything received but not yet handled (used before a TLS handshake). */
  discard(): void {
    this.pending = [];
    while (this.stream.read() !== null) {
      /* dropped: bytes sent before the handshake must not be processed */
    }
  }

  /** Continues on another stream (the TLS socket after STARTTLS). */
  replace(stream: Readable): void {
    this.detach();
    this.pending = [];
    this.ended = false;
    this.stream = stream;
    this.attach();
  }

  /** Gives bytes back (what followed the end of DATA). */
  unshift(b: Buffer): void {
    if (b.length > 0) this.pending.unshift(b);
  }

  /**
   * Caps every wait for the client at capMs (undefined: no cap), the wait under way too, counted from its start: a
   * listener near its connection limit gives idle clients seconds instead of minutes (Postfix's stress mode).
   */
  setCap(capMs: number | undefined): void {
    this.cap = capMs;
    clearTimeout(this.capTimer);
    this.capTimer = undefined;
    if (capMs === undefined || this.wake === undefined) return;
    const left = this.waitingSince + capMs - Date.now();
    const expire = (): void => {
      this.expired = true;
      this.wake?.();
    };
    if (left <= 0) expire();
    else this.capTimer = setTimeout(expire, left);
  }

  /**
   * Waits for `done` (true: the client took our output) as for the client's next bytes: at most timeoutMs, capped
   * under stress like every other wait (a client that never reads its replies must not hold a slot past the cap).
   * False when `done` says so, or the time runs out.
   */
  async until(done: Promise<boolean>, timeoutMs: number): Promise<boolean> {
    let result: boolean | undefined;
    void done.then((v) => {
      result = v;
      this.wake?.();
    });
    let timedOut = false;
    this.expired = false;
    this.waitingSince = Date.now();
    const timer = setTimeout(
      () => {
        timedOut = true;
        this.wake?.();
      },
      Math.min(timeoutMs, this.cap ?? Infinity),
    );
    try {
      for (;;) {
        if (result !== undefined) return result;
        if (timedOut || this.expired) return false;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      clearTimeout(timer);
      clearTimeout(this.capTimer);
      this.capTimer = undefined;
    }
  }

  /**
   * The next bytes, waiting at most timeoutMs for them. Under stress the cap counts from `since` when given (line():
   * the start of the command line, so a line must arrive whole within the cap), else from now.
   */
  async chunk(timeoutMs: number, since?: number): Promise<ReadResult> {
    const p = this.pending.shift();
    if (p) return p;
    // Fast path: bytes already buffered need no timer and no promise (pipelined commands, DATA chunks).
    const ready = this.stream.read() as Buffer | string | null;
    if (ready !== null) return typeof ready === 'string' ? Buffer.from(ready, 'latin1') : ready;
    if (this.ended || this.stream.destroyed) return 'eof'; // no timer armed for a stream that has ended
    this.timedOut = false;
    this.expired = false;
    const now = Date.now();
    this.waitingSince = since ?? now;
    const capLeft = this.cap === undefined ? Infinity : this.waitingSince + this.cap - now;
    this.deadline = now + Math.max(0, Math.min(timeoutMs, capLeft));
    if (this.idleTimer === undefined || this.idleFiresAt > this.deadline) this.armIdle(now);
    else this.idleTimer.ref();
    try {
      for (;;) {
        const c = this.stream.read() as Buffer | string | null;
        if (c !== null) return typeof c === 'string' ? Buffer.from(c, 'latin1') : c;
        if (this.ended || this.stream.destroyed) return 'eof';
        if (this.timedOut || this.expired) return 'timeout';
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      this.deadline = Infinity;
      this.idleTimer?.unref();
      clearTimeout(this.capTimer);
      this.capTimer = undefined;
    }
  }

  /**
   * One command line, split at LF (qmail accepts LF-only command lines, B.6); `crlf` tells whether a CR
   * preceded it (the CR is removed). A line longer than maxLen is consumed up to its LF and reported.
   * timeoutMs bounds each wait for bytes (qmail's timeoutread); under stress (setCap) the cap bounds the whole line,
   * as Postfix's smtpd_per_record_deadline does, so a client trickling a byte at a time cannot keep its slot.
   */
  async line(timeoutMs: number, maxLen: number): Promise<LineResult> {
    const parts: Buffer[] = [];
    let len = 0;
    let tooLong = false;
    const since = Date.now();
    for (;;) {
      const c = await this.chunk(timeoutMs, since);
      if (c === 'eof' || c === 'timeout') return c;
      const nl = c.indexOf(10);
      const head = nl < 0 ? c : c.subarray(0, nl);
      if (!tooLong) {
        parts.push(head);
        len += head.length;
        if (len > maxLen) {
          tooLong = true;
          parts.length = 0;
        }
      }
      if (nl >= 0) {
        this.unshift(c.subarray(nl + 1));
        if (tooLong) return 'too-long';
        let line = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
        const crlf = line.length > 0 && line[line.length - 1] === 13;
        if (crlf) line = line.subarray(0, line.length - 1);
        return { line, crlf };
      }
    }
  }
}
