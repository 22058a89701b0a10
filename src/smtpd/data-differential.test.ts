// Differential test of the DATA decoder: the fast DataDecoder (data.ts) against the reference model below, the
// byte-at-a-time state machine it replaced (copied unchanged but for the name), on random and hand-picked input.
import { DataDecoder, type DataProblem, type DecodeResult } from './data.js';

// ---- The reference model: the decoder as it was before the fast path (commit 3c5d0f9's data.ts). ----

const CR = 13;
const LF = 10;
const DOT = 46;

const enum St {
  LineStart, // after CRLF (or after the DATA command line)
  Dot, // '.' at line start
  DotCr, // '.\r' at line start
  Mid, // inside a line
  Cr, // '\r' inside a line
}

/** qmail counts header lines starting with these (case-insensitive); 100 or more is a loop. */
const HOP_PREFIXES = ['received', 'delivered'];
const MAX_HOPS = 100;

class ReferenceDecoder {
  private st = St.LineStart;
  private inHeader = true;
  private lineHead = '';
  private lineLen = 0;
  private size = 0;
  private hops = 0;
  problem: DataProblem | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly keepBareCr = false,
  ) {}

  get bytes(): number {
    return this.size;
  }

  push(chunk: Buffer): DecodeResult {
    // output never exceeds input plus the '.' and CR held back from the previous chunk (kept with keepBareCr)
    const out = Buffer.allocUnsafe(chunk.length + 2);
    let n = 0;
    let i = 0;
    const emit = (c: number): void => {
      this.size++;
      if (this.maxBytes > 0 && this.size > this.maxBytes) this.flag('too-big');
      else out[n++] = c;
      this.track(c);
    };
    for (; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (this.problem === 'bare-lf') break;
      switch (this.st) {
        case St.LineStart:
          if (c === DOT) this.st = St.Dot;
          else this.mid(c, emit);
          break;
        case St.Dot:
          if (c === CR) this.st = St.DotCr;
          else this.mid(c, emit); // the leading dot is removed
          break;
        case St.DotCr:
          if (c === LF) {
            this.st = St.LineStart;
            return { out: out.subarray(0, n), consumed: i + 1, done: true };
          }
          if (this.keepBareCr) {
            // qmail: `.<CR>x` at a line start keeps the dot and the CR
            emit(DOT);
            emit(CR);
            this.mid(c, emit);
            break;
          }
          this.flag('bare-cr');
          this.mid(c, emit);
          break;
        case St.Mid:
          this.mid(c, emit);
          break;
        case St.Cr:
          if (c === LF) {
            emit(LF);
            this.st = St.LineStart;
          } else if (this.keepBareCr) {
            emit(CR); // the pending CR was a lone one: kept; c may start another pending CR
            this.mid(c, emit);
          } else {
            this.flag('bare-cr');
            this.mid(c, emit);
          }
          break;
      }
    }
    return { out: out.subarray(0, n), consumed: i, done: false };
  }

  private mid(c: number, emit: (c: number) => void): void {
    if (c === CR) this.st = St.Cr;
    else if (c === LF) this.flag('bare-lf');
    else {
      if (c === 0) this.flag('nul');
      emit(c);
      this.st = St.Mid;
    }
  }

  private flag(p: DataProblem): void {
    // A bare LF always wins (the session ends at once); otherwise the first problem is reported.
    if (p === 'bare-lf' || this.problem === undefined) this.problem = p;
  }

  /** Hop counting over the produced header lines. */
  private track(c: number): void {
    if (!this.inHeader) return;
    if (c === LF) {
      if (this.lineLen === 0) this.inHeader = false;
      this.lineLen = 0;
      this.lineHead = '';
      return;
    }
    this.lineLen++;
    if (this.lineHead.length < 9) {
      this.lineHead += String.fromCharCode(c).toLowerCase();
      if (HOP_PREFIXES.includes(this.lineHead)) {
        this.hops++;
        if (this.hops >= MAX_HOPS) this.flag('too-many-hops');
      }
    }
  }
}
