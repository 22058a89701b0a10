// Inbound message checks (SPF, DKIM, DMARC, ARC) as an interface start fills in; spoofed Authentication-Results out.
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

/** Per listener (`authcheck=`): no checks; an Authentication-Results header only; 550 on a DMARC p=reject failure. */
export type CheckPolicy = 'off' | 'header' | 'reject';

/** What a checked message came with: the SMTP facts SPF needs and this host's name (the authserv-id). */
export interface CheckFacts {
  readonly ip: string;
  readonly helo: string;
  readonly sender: string;
  readonly host: string;
}

export interface CheckVerdict {
  /** Header lines to put in front of the message (Authentication-Results, Received-SPF), LF line ends. */
  readonly header: string;
  /** Set when the sender's domain asks for rejection (DMARC p=reject and the message fails): the reason. */
  readonly reject?: string;
  /** Short results for the log: spf, dkim, dmarc, arc. */
  readonly results: Readonly<Record<string, string>>;
}

/** Verifies one message; `message()` gives its bytes (LF line ends) as many times as asked. Never rejects. */
export interface MessageChecker {
  check(message: () => Readable, facts: CheckFacts): Promise<CheckVerdict>;
}

const NAME = /^([!-9;-~]+)[ \t]*:/; // RFC 5322 2.2: field name, printable ASCII but ':'

/**
 * Drops `Authentication-Results:` fields whose authserv-id is `host` from the header section (RFC 8601 5: an
 * MTA removes fields that claim its own name, so later readers can trust the one it adds). Streams: a field is
 * held until its last continuation line is seen; the body passes untouched. A field longer than 64 KiB is passed.
 */
export class AuthResultsStrip {
  private inHeader = true;
  /** Bytes of the header section seen so far (all of it once the blank line has passed). */
  headerBytes = 0;
  private field = '';
  private partial = '';
  removed = 0;

  constructor(private readonly host: string) {}

  /** Bytes in, the bytes to keep out (latin1, LF line ends). */
  push(chunk: Buffer): Buffer {
    if (!this.inHeader) return chunk;
    let out = '';
    const text = this.partial + chunk.toString('latin1');
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const line = text.slice(start, nl + 1);
      start = nl + 1;
      this.headerBytes += line.length;
      if (line.startsWith(' ') || line.startsWith('\t')) {
        this.field += line; // a continuation of the field being held
        if (this.field.length > 65536) out += this.release(false);
        continue;
      }
      out += this.release(true);
      if (line === '\n') {
        this.inHeader = false;
        out += line + text.slice(start);
        this.partial = '';
        return Buffer.from(out, 'latin1');
      }
      this.field = line;
    }
    this.partial = text.slice(start);
    return Buffer.from(out, 'latin1');
  }

  /** Bytes of the header section seen so far, a line not yet ended included. */
  get headerSeen(): number {
    return this.inHeader ? this.headerBytes + this.partial.length : this.headerBytes;
  }

  /** At the end of the message: whatever is still held. */
  end(): Buffer {
    let out = '';
    if (this.inHeader && this.partial !== '') {
      // a last header line without its line end
      if (this.partial.startsWith(' ') || this.partial.startsWith('\t')) this.field += this.partial;
      else {
        out += this.release(true);
        this.field = this.partial;
      }
    } else out += this.partial;
    this.partial = '';
    out += this.release(true);
    return Buffer.from(out, 'latin1');
  }

  private release(judge: boolean): string {
    const f = this.field;
    this.field = '';
    if (judge && this.claimsHost(f)) {
      this.removed++;
      return '';
    }
    return f;
  }

  private claimsHost(field: string): boolean {
    const m = NAME.exec(field);
    if (m?.[1]?.toLowerCase() !== 'authentication-results') return false;
    const value = field.slice(field.indexOf(':') + 1).replace(/\(.*?\)/g, ' ');
    const id = /^[\s]*([^\s;]+)/.exec(value)?.[1];
    return id !== undefined && id.toLowerCase() === this.host.toLowerCase();
  }
}

/**
 * A message held until it has been checked: in memory up to `memMax` bytes, then in an unlinked temporary file
 * (nothing to clean up after a crash). Read back any number of times with `stream()`; `close()` when done.
 */
export class Spool {
  private readonly chunks: Buffer[] = [];
  private inMemory = 0;
  private fh: FileHandle | undefined;
  size = 0;

  constructor(private readonly memMax = 1 << 20) {}

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.size += b.length;
    if (this.fh === undefined && this.inMemory + b.length <= this.memMax) {
      this.chunks.push(b);
      this.inMemory += b.length;
      return;
    }
    if (this.fh === undefined) {
      const path = join(tmpdir(), `quail-smtpd-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
      this.fh = await open(path, 'wx+', 0o600);
      await unlink(path);
    }
    await this.fh.write(b, 0, b.length, this.size - b.length - this.inMemory);
  }

  stream(): Readable {
    const { chunks, fh } = this;
    async function* all(): AsyncGenerator<Buffer> {
      yield* chunks;
      if (fh !== undefined)
        for await (const c of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 65536 }))
          yield c as Buffer;
    }
    return Readable.from(all());
  }

  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}
