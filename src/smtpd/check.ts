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

/** An Authentication-Results field longer than this is not read: it is removed whole (no real one comes near). */
export const MAX_AUTH_RESULTS_FIELD = 65536;

/**
 * Drops `Authentication-Results:` fields whose authserv-id is `host` from the header section (RFC 8601 5: an
 * MTA removes fields that claim its own name, so later readers can trust the one it adds). The authserv-id is
 * read as RFC 8601 2.2 says, after unfolding and any comments (nested, with quoted-pairs), as a token or a
 * quoted-string, compared ignoring case and a final dot. A field whose authserv-id cannot be read (a comment or
 * quoted-string that never ends, nothing before the `;`) or longer than `MAX_AUTH_RESULTS_FIELD` is removed too:
 * what quail cannot judge a later reader might judge as this host's. Streams: an Authentication-Results field is
 * held until its last continuation line is seen; every other field and the body pass untouched.
 */
export class AuthResultsStrip {
  private inHeader = true;
  /** Bytes of the header section seen so far (all of it once the blank line has passed). */
  headerBytes = 0;
  /** The field being read: one held to be judged, one passed on, one too long (dropped), or none yet. */
  private mode: 'none' | 'pass' | 'hold' | 'drop' = 'none';
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
      if (line === '\n') {
        out += this.release();
        this.inHeader = false;
        out += line + text.slice(start);
        this.partial = '';
        return Buffer.from(out, 'latin1');
      }
      out += this.line(line);
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
    // a last header line without its line end
    if (this.inHeader && this.partial !== '') out += this.line(this.partial);
    else out += this.partial;
    this.partial = '';
    out += this.release();
    return Buffer.from(out, 'latin1');
  }

  /** One header line (not the blank one): what to pass on now. */
  private line(line: string): string {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // a continuation of the field being read
      if (this.mode === 'hold') {
        this.field += line;
        this.tooLong();
        return '';
      }
      return this.mode === 'drop' ? '' : line;
    }
    const out = this.release();
    if (NAME.exec(line)?.[1]?.toLowerCase() === 'authentication-results') {
      this.mode = 'hold';
      this.field = line;
      this.tooLong();
      return out;
    }
    this.mode = 'pass';
    return out + line;
  }

  private tooLong(): void {
    if (this.field.length <= MAX_AUTH_RESULTS_FIELD) return;
    this.mode = 'drop';
    this.field = '';
    this.removed++;
  }

  /** The end of the field being read: a held one is judged, passed on unless it claims this host. */
  private release(): string {
    const held = this.mode === 'hold' ? this.field : '';
    this.mode = 'none';
    this.field = '';
    if (held === '') return '';
    // unfolded (RFC 5322 2.2.3): every line end in a held field but its last is followed by white space
    const id = authservId(held.slice(held.indexOf(':') + 1).replace(/\r?\n/g, ''));
    if (id === null || sameHost(id, this.host)) {
      this.removed++;
      return '';
    }
    return held;
  }
}

/** RFC 2045 5.1 tspecials, which end a token (with space and controls). */
const TSPECIALS = '()<>@,;:\\"/[]?=';

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

/**
 * The authserv-id of an Authentication-Results field's unfolded value (RFC 8601 2.2: `[CFWS] authserv-id`, a
 * `value` of RFC 2045: token or quoted-string, unquoted); null when it cannot be read. Comments nest and may hold
 * quoted-pairs (RFC 5322 3.2.2). One pass over the text, no regular expression, no recursion: linear in the
 * field's length whatever it holds.
 */
export function authservId(value: string): string | null {
  const n = value.length;
  let i = 0;
  // CFWS: white space and comments, in any order
  for (;;) {
    while (i < n && isSpace(value.charAt(i))) i++;
    if (value.charAt(i) !== '(') break;
    let depth = 0;
    do {
      if (i >= n) return null; // the comment never ends
      const c = value.charAt(i);
      if (c === '\\')
        i++; // a quoted-pair: the next character is only text
      else if (c === '(') depth++;
      else if (c === ')') depth--;
      i++;
    } while (depth > 0);
  }
  if (i >= n) return null;
  if (value.charAt(i) === '"') {
    let id = '';
    for (i++; ; i++) {
      if (i >= n) return null; // the quoted-string never ends
      const c = value.charAt(i);
      if (c === '"') return id;
      if (c === '\\') {
        i++;
        if (i >= n) return null;
        id += value.charAt(i);
      } else id += c;
    }
  }
  const from = i;
  while (i < n) {
    const c = value.charAt(i);
    if (isSpace(c) || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f || TSPECIALS.includes(c)) break;
    i++;
  }
  return i > from ? value.slice(from, i) : null;
}

/** The same host name, ignoring case, white space around it and a final dot (`mx.example.` is `mx.example`). */
function sameHost(id: string, host: string): boolean {
  const norm = (h: string): string => {
    const t = h.trim().toLowerCase();
    return t.endsWith('.') ? t.slice(0, -1) : t;
  };
  return norm(id) === norm(host);
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
