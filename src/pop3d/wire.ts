// Message bytes as POP3 sends them: bare LF → CRLF, dot-stuffing, TOP's line cut, and the size as sent.

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

/** State carried across chunk boundaries. */
interface WireState {
  atLineStart: boolean;
  prevCR: boolean;
  /** Still in the header section (until the first empty line). */
  inHeader: boolean;
  /** The current line is empty so far (to find the end of the header). */
  lineEmpty: boolean;
  /** Body lines still allowed (TOP); Infinity for RETR. */
  bodyLeft: number;
  done: boolean;
}

const CRLF = Buffer.from('\r\n');

/**
 * Converts a chunk; returns the bytes to send. RFC 1939 section 3: lines end in CRLF, a line starting with "."
 * gets another "."; section 7 (TOP): the header, the blank line, then `n` body lines.
 *
 * The state is kept in locals inside the loop and stored back once: a 4 KiB message is one call, and the loop over
 * its bytes is most of RETR's own work (docs/PERFORMANCE.md, POP3).
 */
function convert(chunk: Buffer, st: WireState): Buffer {
  const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
  let o = 0;
  let atLineStart = st.atLineStart;
  let prevCR = st.prevCR;
  let inHeader = st.inHeader;
  let lineEmpty = st.lineEmpty;
  let bodyLeft = st.bodyLeft;
  let done = st.done;
  const n = chunk.length;
  for (let i = 0; i < n && !done; i++) {
    const c = chunk[i] as number;
    if (atLineStart) {
      if (!inHeader && bodyLeft <= 0) {
        done = true;
        break;
      }
      atLineStart = false;
      lineEmpty = true;
      if (c === DOT) out[o++] = DOT;
    }
    if (c === LF) {
      if (!prevCR) out[o++] = CR;
      out[o++] = LF;
      prevCR = false;
      atLineStart = true;
      if (inHeader) {
        if (lineEmpty) inHeader = false;
      } else bodyLeft--;
      continue;
    }
    if (prevCR || c !== CR) lineEmpty = false; // a lone CR inside a line is content
    prevCR = c === CR;
    out[o++] = c;
  }
  st.atLineStart = atLineStart;
  st.prevCR = prevCR;
  st.inHeader = inHeader;
  st.lineEmpty = lineEmpty;
  st.bodyLeft = bodyLeft;
  st.done = done;
  return out.subarray(0, o);
}

function freshState(bodyLines: number | undefined): WireState {
  return {
    atLineStart: true,
    prevCR: false,
    inHeader: true,
    lineEmpty: true,
    bodyLeft: bodyLines ?? Infinity,
    done: false,
  };
}

/** The message on the wire, chunk by chunk (never the whole message at once); ends with CRLF. */
export async function* toWire(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  bodyLines?: number,
): AsyncGenerator<Buffer> {
  const st = freshState(bodyLines);
  for await (const raw of source) {
    const chunk = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
    const b = convert(chunk, st);
    if (b.length > 0) yield b;
    if (st.done) return; // TOP: the rest is not read (the caller's iterator destroys the file stream)
  }
  // A message without a final newline still ends its last line before the terminating "."
  if (!st.atLineStart) yield st.prevCR ? Buffer.from('\n') : CRLF;
}

/** A message already in memory, in wire form (the synchronous toWire, for small messages). */
export function wireOf(data: Buffer, bodyLines?: number): Buffer[] {
  const st = freshState(bodyLines);
  const out: Buffer[] = [];
  const b = convert(data, st);
  if (b.length > 0) out.push(b);
  if (!st.done && !st.atLineStart) out.push(st.prevCR ? Buffer.from('\n') : CRLF);
  return out;
}

/** Size as sent by RETR (CRLF line ends, final line ended, no dot-stuffing): incremental counter. */
export class WireSizer {
  private size = 0;
  private prevCR = false;
  private atLineStart = true;

  add(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (c === LF && !this.prevCR) this.size++;
      this.prevCR = c === CR;
      this.atLineStart = c === LF;
    }
    this.size += chunk.length;
  }

  total(): number {
    if (this.atLineStart || this.size === 0) return this.size;
    return this.size + (this.prevCR ? 1 : 2);
  }
}
