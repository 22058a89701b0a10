// The DATA decoder: strict CRLF end-of-data detection, dot-unstuffing, CRLF→LF, hop count, size (B.7).

/** Why a message is refused; decided by the bytes, reported after the final dot (or at once for bare LF). */
export type DataProblem = 'bare-lf' | 'bare-cr' | 'nul' | 'too-big' | 'too-many-hops';

export interface DecodeResult {
  /** Message bytes produced by this chunk (LF line ends, leading dots removed). */
  readonly out: Buffer;
  /** How many input bytes were used; the rest belongs to the next command. */
  readonly consumed: number;
  /** True once `CRLF.CRLF` was seen. */
  readonly done: boolean;
}

const CR = 13;
const LF = 10;
const DOT = 46;
const EMPTY = Buffer.alloc(0);

const enum St {
  LineStart, // after CRLF (or after the DATA command line)
  Dot, // '.' at line start
  DotCr, // '.\r' at line start
  Mid, // inside a line
  Cr, // '\r' inside a line
}

/**
 * qmail counts header lines starting with these (case-insensitive); 100 or more is a loop. A bit each in
 * `DataDecoder.hopHead`: set while the line under way can still start with it.
 */
const RECEIVED = 'received';
const DELIVERED = 'delivered';
const REC = 1;
const DEL = 2;
const MAX_HOPS = 100;
/** Which problem is reported when a message has several (flag): qmail-smtpd's order, then quail's own. */
export const PROBLEM_RANK: Readonly<Record<DataProblem, number>> = {
  'bare-lf': 4,
  'too-many-hops': 3,
  'too-big': 2,
  nul: 1,
  'bare-cr': 1,
};

/**
 * Byte-level state machine. Only `<CR><LF>.<CR><LF>` ends the data (RFC 5321 4.1.1.4); a bare LF is
 * fatal at once (qmail's smtplf rule) and a bare CR or NUL marks the message as refused without
 * ending it early, so no byte sequence can end DATA before the real terminator or start a second message.
 *
 * Fast path: inside a line (or at a line start that is not a '.'), once a header line's first bytes have decided
 * whether it is a hop (at most 9; in the body at once), the bytes up to the next CR or LF are plain text for every
 * state of the machine: they are found with the native `indexOf` and copied in one piece, the few decisions the
 * byte-wise machine makes for them (a NUL, the byte over databytes) are taken from positions, and the CRLF after
 * them is taken as `step` takes it. Everything else — a lone CR or LF, '.', a line's CRLF at the end of a chunk, a
 * header line's start — goes through `step`, byte by byte. src/smtpd/data-differential.test.ts holds this to the
 * byte-wise decoder it replaced, output for output.
 */
export class DataDecoder {
  private st = St.LineStart;
  private inHeader = true;
  private hopHead = REC | DEL;
  private lineLen = 0;
  private size = 0;
  private hops = 0;
  problem: DataProblem | undefined;
  /** The output of the push under way and how much of it is written (fields, so `emit` needs no closure). */
  private out: Buffer = EMPTY;
  private n = 0;

  /**
   * databytes: 0 = no limit. keepBareCr (QUAIL_BARECR="keep" in the session environment): a CR not followed
   * by LF is kept in the message as qmail-smtpd's blast() keeps it, instead of refusing the message. Only
   * `CRLF.CRLF` still ends DATA and a bare LF is still fatal, so the opt-out never lets DATA end early.
   */
  constructor(
    private readonly maxBytes: number,
    private readonly keepBareCr = false,
  ) {}

  get bytes(): number {
    return this.size;
  }

  push(chunk: Buffer): DecodeResult {
    // output never exceeds input plus the '.' and CR held back from the previous chunk (kept with keepBareCr)
    this.out = Buffer.allocUnsafe(chunk.length + 2);
    this.n = 0;
    const len = chunk.length;
    let lf = -1; // the next LF at or after i (len: none); stale when below i
    let nul = -1; // the same for NUL
    let i = 0;
    while (i < len) {
      if (this.problem === 'bare-lf') break;
      const st = this.st;
      if ((st === St.Mid || (st === St.LineStart && chunk[i] !== DOT)) && (!this.inHeader || this.hopHead === 0)) {
        let end = chunk.indexOf(CR, i);
        if (end < 0) end = len;
        if (lf < i) {
          lf = chunk.indexOf(LF, i);
          if (lf < 0) lf = len;
        }
        if (lf < end) end = lf;
        if (end > i) {
          const count = end - i;
          // the problems in the span: the byte over databytes, a NUL (which counts only when none came before)
          if (this.maxBytes > 0 && this.size + count > this.maxBytes) this.flag('too-big');
          if (this.problem === undefined) {
            if (nul < i) {
              nul = chunk.indexOf(0, i);
              if (nul < 0) nul = len;
            }
            if (nul < end) this.flag('nul');
          }
          const keep = this.maxBytes > 0 ? Math.max(0, Math.min(count, this.maxBytes - this.size)) : count;
          if (keep > 0) this.n += chunk.copy(this.out, this.n, i, i + keep);
          this.size += count;
          // `track` would only count the line's length, which matters as zero (an empty line): hopHead is 0
          // only after a byte of the line
          if (end + 1 < len && chunk[end] === CR && chunk[end + 1] === LF) {
            this.emit(LF); // the line's CRLF, as step() takes it: CR to St.Cr, then LF emitted
            this.st = St.LineStart;
            i = end + 2;
          } else {
            this.st = St.Mid;
            i = end;
          }
          continue;
        }
      }
      if (this.step(chunk[i] as number)) return this.result(i + 1, true);
      i++;
    }
    return this.result(i, false);
  }

  private result(consumed: number, done: boolean): DecodeResult {
    const out = this.out.subarray(0, this.n);
    this.out = EMPTY;
    return { out, consumed, done };
  }

  /** One byte through the state machine; true when it ends the data. */
  private step(c: number): boolean {
    switch (this.st) {
      case St.LineStart:
        if (c === DOT) {
          this.st = St.Dot;
          // qmail counts hops on the bytes as sent (blast): a line that starts with a stuffed dot is no hop
          if (this.inHeader) {
            this.hopHead = 0;
            this.lineLen++;
          }
        } else this.mid(c);
        break;
      case St.Dot:
        if (c === CR) this.st = St.DotCr;
        else this.mid(c); // the leading dot is removed
        break;
      case St.DotCr:
        if (c === LF) {
          this.st = St.LineStart;
          return true;
        }
        if (this.keepBareCr) {
          // qmail: `.<CR>x` at a line start keeps the dot and the CR
          this.emit(DOT);
          this.emit(CR);
          this.mid(c);
          break;
        }
        this.flag('bare-cr');
        this.mid(c);
        break;
      case St.Mid:
        this.mid(c);
        break;
      case St.Cr:
        if (c === LF) {
          this.emit(LF);
          this.st = St.LineStart;
        } else if (this.keepBareCr) {
          this.emit(CR); // the pending CR was a lone one: kept; c may start another pending CR
          this.mid(c);
        } else {
          this.flag('bare-cr');
          this.mid(c);
        }
        break;
    }
    return false;
  }

  private mid(c: number): void {
    if (c === CR) this.st = St.Cr;
    else if (c === LF) this.flag('bare-lf');
    else {
      if (c === 0) this.flag('nul');
      this.emit(c);
      this.st = St.Mid;
    }
  }

  private emit(c: number): void {
    this.size++;
    if (this.maxBytes > 0 && this.size > this.maxBytes) this.flag('too-big');
    else this.out[this.n++] = c;
    this.track(c);
  }

  private flag(p: DataProblem): void {
    // qmail-smtpd's order (smtp_data): a bare LF (the session ends at once), too many hops, then databytes; of
    // quail's own refusals (a NUL, a bare CR: qmail takes both) the first is reported
    if (this.problem === undefined || PROBLEM_RANK[p] > PROBLEM_RANK[this.problem]) this.problem = p;
  }

  /**
   * Hop counting over the produced header lines. Byte-wise, as a qmail byte comparison: `| 0x20` folds an
   * ASCII capital to its small letter, and only letters are compared (no other byte folds to one).
   */
  private track(c: number): void {
    if (!this.inHeader) return;
    if (c === LF) {
      if (this.lineLen === 0) this.inHeader = false;
      this.lineLen = 0;
      this.hopHead = REC | DEL;
      return;
    }
    const at = this.lineLen++;
    if (this.hopHead === 0) return;
    const lc = c | 0x20;
    if (lc !== RECEIVED.charCodeAt(at)) this.hopHead &= ~REC;
    if (lc !== DELIVERED.charCodeAt(at)) this.hopHead &= ~DEL;
    if ((at === RECEIVED.length - 1 && this.hopHead === REC) || (at === DELIVERED.length - 1 && this.hopHead === DEL)) {
      this.hopHead = 0;
      this.hops++;
      if (this.hops >= MAX_HOPS) this.flag('too-many-hops');
    }
  }
}
