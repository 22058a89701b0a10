// Differential test of the DATA decoder: the fast DataDecoder (data.ts) against the reference model below, the
// byte-at-a-time state machine it replaced (commit 3c5d0f9's, since given qmail's hop count on the bytes as sent
// and its order of problems), on random and hand-picked input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DataDecoder, PROBLEM_RANK, type DataProblem, type DecodeResult } from './data.js';

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
          if (c === DOT) {
            this.st = St.Dot;
            // qmail counts hops on the bytes as sent: a line that starts with a (stuffed) dot is no Received line
            if (this.inHeader) {
              this.lineHead = '.';
              this.lineLen++;
            }
          } else this.mid(c, emit);
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
    // qmail-smtpd's order: a bare LF (the session ends at once), too many hops, then databytes; of quail's own
    // refusals (a NUL, a bare CR) the first
    if (this.problem === undefined || PROBLEM_RANK[p] > PROBLEM_RANK[this.problem]) this.problem = p;
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

// ---- The harness: the same chunks through both, every push's result and the state after it compared. ----

interface Decoder {
  push(chunk: Buffer): DecodeResult;
  readonly problem: DataProblem | undefined;
  readonly bytes: number;
}

interface Step {
  out: string;
  consumed: number;
  done: boolean;
  problem: DataProblem | undefined;
  bytes: number;
}

/**
 * Pushes each chunk; after `done` the rest of the chunk is pushed again (as if a second message followed on the
 * same decoder, which the session never does: a stricter comparison), and chunks after a bare LF are still
 * pushed (each must consume nothing).
 */
function trace(d: Decoder, chunks: readonly Buffer[]): Step[] {
  const steps: Step[] = [];
  for (const chunk of chunks) {
    let rest = chunk;
    for (;;) {
      const r = d.push(rest);
      steps.push({
        out: r.out.toString('latin1'),
        consumed: r.consumed,
        done: r.done,
        problem: d.problem,
        bytes: d.bytes,
      });
      if (!r.done || r.consumed === rest.length) break;
      rest = rest.subarray(r.consumed);
    }
  }
  return steps;
}

function cut(input: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.min(c, input.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const c of [...at, input.length]) {
    chunks.push(input.subarray(from, c)); // an empty chunk now and then is part of the test
    from = c;
  }
  return chunks;
}

function same(input: Buffer, chunks: readonly Buffer[], max: number, keepBareCr: boolean): void {
  const want = trace(new ReferenceDecoder(max, keepBareCr), chunks);
  const got = trace(new DataDecoder(max, keepBareCr), chunks);
  const what = `${JSON.stringify(input.toString('latin1'))} in ${chunks.length} chunks, max ${max}, keepBareCr ${keepBareCr}`;
  assert.deepEqual(got, want, what);
}

/** Every way to cut `input` into two chunks, into 1-byte chunks, and whole. */
function everyCut(input: string, max = 0): void {
  const buf = Buffer.from(input, 'latin1');
  for (const keepBareCr of [false, true]) {
    same(buf, [buf], max, keepBareCr);
    same(
      buf,
      cut(
        buf,
        Array.from({ length: buf.length }, (_, k) => k),
      ),
      max,
      keepBareCr,
    );
    for (let k = 0; k <= buf.length; k++) same(buf, cut(buf, [k]), max, keepBareCr);
  }
}

const SEED = Number(process.env['DATA_SEED'] ?? 1414);
const RUNS = Number(process.env['DATA_RUNS'] ?? 3000);

/** Pieces biased towards the bytes and sequences the state machine decides on. */
const piece = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom('\r', '\n', '.', '\0', '\r\n', '\r\n.', '.\r\n', '\r\n.\r\n', '\r\n\r\n', '\r\r\n'),
  },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'Received:',
      'received',
      'RECEIVED: x',
      'Receive',
      'Delivered-To:',
      'dElIvErEd',
      'Delivere',
      'R',
      'e',
      'c',
      'D',
    ),
  },
  {
    weight: 4,
    arbitrary: fc.string({ unit: fc.constantFrom('a', 'b', ' ', ':', 'R', 'e', 'd', '\t'), maxLength: 40 }),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b).toString('latin1')) },
  { weight: 1, arbitrary: fc.constant('x'.repeat(300)) },
);
const message = fc.array(piece, { maxLength: 60 }).map((p) => Buffer.from(p.join(''), 'latin1'));
const maxBytes = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 16 }),
  fc.integer({ min: 1, max: 600 }),
  fc.constant(1e9),
);
/** Cut points: none, every byte, or a random few. */
const cuts = (len: number): fc.Arbitrary<number[]> =>
  fc.oneof(
    fc.constant<number[]>([]),
    fc.constant(Array.from({ length: len }, (_, k) => k + 1)),
    fc.array(fc.nat({ max: len }), { maxLength: 12 }),
  );
const input = message.chain((m) => fc.tuple(fc.constant(m), cuts(m.length)));

void test(`property (fast-check, seed ${SEED}, ${RUNS} runs): random data in random chunks decodes as the reference`, () => {
  fc.assert(
    fc.property(input, maxBytes, fc.boolean(), ([m, c], max, keepBareCr) => same(m, cut(m, c), max, keepBareCr)),
    { seed: SEED, numRuns: RUNS },
  );
});

/** A header line that counts as a hop, or one that nearly does, in random case. */
const cased = (lines: string[]): fc.Arbitrary<string> =>
  fc
    .tuple(fc.constantFrom(...lines), fc.constantFrom('lower', 'upper', 'as is'))
    .map(([l, c]) => `${c === 'lower' ? l.toLowerCase() : c === 'upper' ? l.toUpperCase() : l}\r\n`);
const hop = cased(['Received: from x', 'Delivered-To: y@z', 'Received', 'Delivered', 'ReCeIvEd:', 'dElIvErEd-to:']);
const nearHop = cased(['Receive: no', 'X-Received: no', 'Delivere', 'Deliver-To: no', ' Received: folded']);
/** 97 to 103 hop lines, some with a near miss before them, then an empty line (or none) and the end. */
const header = fc
  .tuple(
    fc.array(fc.tuple(fc.option(nearHop, { freq: 2 }), hop), { minLength: 97, maxLength: 103 }),
    fc.constantFrom('', '\r\nbody\r\n', '\r\nReceived: in the body\r\n'),
  )
  .map(([lines, tail]) =>
    Buffer.from(`${lines.map(([near, h]) => (near ?? '') + h).join('')}${tail}\r\n.\r\n`, 'latin1'),
  );
const headerInput = header.chain((m) => fc.tuple(fc.constant(m), cuts(m.length)));

/** The oracle: header lines (up to the first empty one) that start with Received or Delivered, in any case. */
function hopLines(text: Buffer): number {
  const lines = text.toString('latin1').split('\r\n');
  const end = lines.indexOf('');
  return (end < 0 ? lines : lines.slice(0, end)).filter((l) => /^(received|delivered)/i.test(l)).length;
}

void test(`property (fast-check, seed ${SEED}): ~100 hop lines in random chunks count as the reference counts`, () => {
  fc.assert(
    fc.property(headerInput, maxBytes, fc.boolean(), ([m, c], max, keepBareCr) => {
      same(m, cut(m, c), max, keepBareCr);
      const d = new DataDecoder(0, keepBareCr);
      d.push(m);
      const hops = hopLines(m);
      assert.equal(d.problem, hops >= 100 ? 'too-many-hops' : undefined, `${hops} hop lines`);
    }),
    { seed: SEED, numRuns: 300 },
  );
});

void test('chunk boundaries at every point of the places the state machine decides', () => {
  everyCut('a\r\nb\r\n.\r\nNEXT'); // between CR and LF, between CRLF and '.', between '.' and CR
  everyCut('\r\n.\r\n'); // an empty line then the end
  everyCut('.\r\n');
  everyCut('Subject: x\r\n\r\n..dot\r\n.\rx\r\n.x\r\nend\r\n.\r\nQUIT\r\n');
  everyCut('a\0b\r\n\0\r\n.\r\n');
  everyCut('abc\rdef\r\r\n.\r\r\n.\r\n');
  everyCut('line\nmore\r\n.\r\n');
  for (const max of [1, 3, 4, 5, 6, 7, 11]) everyCut('abc\r\nde\0fgh\r\n.\r\n', max);
  everyCut('Received: a\r\nDELIVERED-to: b\r\nReceive\r\n\r\nReceived: body\r\n.\r\n');
});

void test('more than 100 Received lines across chunks: too-many-hops exactly where the reference says', () => {
  for (const n of [99, 100, 101, 150]) {
    const text = Buffer.from(`${'Received: from x by y\r\n'.repeat(n)}\r\nbody\r\n.\r\n`, 'latin1');
    for (const size of [1, 2, 7, 9, 10, 64, 1000]) {
      const chunks = cut(
        text,
        Array.from({ length: Math.ceil(text.length / size) }, (_, k) => k * size),
      );
      for (const max of [0, 2000, 2400, 1e9]) {
        for (const keepBareCr of [false, true]) same(text, chunks, max, keepBareCr);
      }
    }
    const d = new DataDecoder(0);
    d.push(text);
    assert.equal(d.problem, n >= 100 ? 'too-many-hops' : undefined, `${n} lines`);
  }
});

void test('hop count: every byte at every place of Received and Delivered, 100 times, counts as the reference', () => {
  for (const word of ['Received', 'Delivered']) {
    for (let at = 0; at < word.length; at++) {
      for (let b = 0; b < 256; b++) {
        const line = `${word.slice(0, at)}${String.fromCharCode(b)}${word.slice(at + 1)}: x\r\n`;
        const text = Buffer.from(`${line.repeat(100)}\r\n.\r\n`, 'latin1');
        for (const keepBareCr of [false, true]) same(text, [text], 0, keepBareCr);
      }
    }
  }
  const d = new DataDecoder(0);
  d.push(Buffer.from(`${'rECEIVED:\r\n'.repeat(50)}${'DeLiVeReD\r\n'.repeat(50)}\r\n.\r\n`, 'latin1'));
  assert.equal(d.problem, 'too-many-hops');
});

void test('databytes: the byte over the limit and a NUL at the same place, in one chunk and byte by byte', () => {
  // the byte over the limit wins over a NUL wherever each is (qmail takes the NUL and says 552)
  for (const max of [0, 3, 4, 5, 12]) {
    const text = Buffer.from('\r\nabc\0efg\r\n.\r\n', 'latin1'); // in the body: the fast path's span
    for (const keepBareCr of [false, true]) {
      same(text, [text], max, keepBareCr);
      same(text, cut(text, [1, 2, 3, 4, 5, 6, 7, 8]), max, keepBareCr);
    }
  }
  const d = new DataDecoder(4);
  d.push(Buffer.from('\r\nabc\0efg\r\n.\r\n', 'latin1'));
  assert.equal(d.problem, 'too-big');
  assert.equal(d.bytes, 9);
  // the same in a long header line, past the 9 characters of its head
  const h = new DataDecoder(12);
  h.push(Buffer.from('X-Long: abcd\0efg\r\n\r\n.\r\n', 'latin1'));
  assert.equal(h.problem, 'too-big');
  const n = new DataDecoder(0);
  n.push(Buffer.from('X-Long: abcd\0efg\r\n\r\n.\r\n', 'latin1'));
  assert.equal(n.problem, 'nul', 'without databytes the NUL is the problem');
});
