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
 * Converts a chunk into `out` from offset `o` (room for twice the chunk is enough); returns the offset after the last
 * byte written. RFC 1939 section 3: lines end in CRLF, a line starting with "." gets another "."; section 7 (TOP): the
 * header, the blank line, then `n` body lines.
 *
 * A line's bytes are copied by a loop that looks only for its LF; the line's start (the dot, TOP's cut), its end (the
 * CR) and whether it was empty (the end of the header) are settled once per line, not per byte. The state is kept in
 * locals and stored back once. This loop is most of RETR's own work: per byte it was 2.5 times as slow when every
 * byte went through every test (docs/PERFORMANCE.md, fourteenth pass).
 */
function convert(chunk: Buffer, st: WireState, out: Buffer, o: number): number {
  let atLineStart = st.atLineStart;
  let prevCR = st.prevCR;
  let inHeader = st.inHeader;
  let lineEmpty = st.lineEmpty;
  let bodyLeft = st.bodyLeft;
  let done = st.done;
  const n = chunk.length;
  let i = 0;
  while (i < n && !done) {
    if (atLineStart) {
      if (!inHeader && bodyLeft <= 0) {
        done = true;
        break;
      }
      atLineStart = false;
      lineEmpty = true;
      if (chunk[i] === DOT) out[o++] = DOT;
    }
    const from = i;
    while (i < n) {
      const c = chunk[i] as number;
      if (c === LF) break;
      out[o++] = c;
      i++;
    }
    if (i > from) {
      // Empty so far only if all it has is one CR that did not follow a CR (a lone CR inside a line is content).
      if (i - from !== 1 || chunk[from] !== CR || prevCR) lineEmpty = false;
      prevCR = chunk[i - 1] === CR;
    }
    if (i === n) break; // the line goes on in the next chunk
    if (!prevCR) out[o++] = CR;
    out[o++] = LF;
    i++;
    prevCR = false;
    atLineStart = true;
    if (inHeader) {
      if (lineEmpty) inHeader = false;
    } else bodyLeft--;
  }
  st.atLineStart = atLineStart;
  st.prevCR = prevCR;
  st.inHeader = inHeader;
  st.lineEmpty = lineEmpty;
  st.bodyLeft = bodyLeft;
  st.done = done;
  return o;
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
    const out = Buffer.allocUnsafe(chunk.length * 2);
    const o = convert(chunk, st, out, 0);
    if (o > 0) yield out.subarray(0, o);
    if (st.done) return; // TOP: the rest is not read (the caller's iterator destroys the file stream)
  }
  // A message without a final newline still ends its last line before the terminating "."
  if (!st.atLineStart) yield st.prevCR ? Buffer.from('\n') : CRLF;
}

/** The most bytes wireInto writes for `n` bytes of message: every byte a line of its own, its LF becoming CRLF. */
export const wireRoom = (n: number): number => n * 2 + 2;

/**
 * Writes `data` in wire form into `out` from offset `o` (wireRoom(data.length) bytes of room needed) and returns the
 * offset after it: the caller frames it in place, with no buffer of its own (session.ts sendStored).
 */
export function wireInto(data: Buffer, bodyLines: number | undefined, out: Buffer, o: number): number {
  const st = freshState(bodyLines);
  let end = convert(data, st, out, o);
  if (!st.done && !st.atLineStart) {
    if (!st.prevCR) out[end++] = CR;
    out[end++] = LF;
  }
  return end;
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
