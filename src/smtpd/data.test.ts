// Golden table for the DATA decoder: transparency, strict CRLF, smuggling variants, size and hop limits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataDecoder } from './data.js';

function decode(
  input: string,
  max = 0,
  chunk = 0,
  keepBareCr = false,
): { out: string; consumed: number; done: boolean; problem?: string } {
  const d = new DataDecoder(max, keepBareCr);
  const buf = Buffer.from(input, 'latin1');
  const parts =
    chunk > 0
      ? Array.from({ length: Math.ceil(buf.length / chunk) }, (_, i) => buf.subarray(i * chunk, (i + 1) * chunk))
      : [buf];
  let out = '';
  let consumed = 0;
  for (const p of parts) {
    const r = d.push(p);
    out += r.out.toString('latin1');
    consumed += r.consumed;
    if (r.done || d.problem === 'bare-lf')
      return { out, consumed, done: r.done, ...(d.problem ? { problem: d.problem } : {}) };
  }
  return { out, consumed, done: false, ...(d.problem ? { problem: d.problem } : {}) };
}

void test('transparency: dots unstuffed, CRLF to LF, only CRLF.CRLF ends', () => {
  const r = decode('Subject: dots\r\n\r\n..one\r\n...two\r\n.x\r\n. space\r\nend\r\n.\r\nQUIT\r\n');
  assert.deepEqual(r, { out: 'Subject: dots\n\n.one\n..two\nx\n space\nend\n', consumed: 53, done: true });
  for (const size of [1, 2, 3, 7]) assert.equal(decode('a\r\n.\r\nrest', 0, size).out, 'a\n', `chunk ${size}`);
  assert.deepEqual(decode('.\r\n'), { out: '', consumed: 3, done: true });
});

void test('smuggling variants never end DATA early', () => {
  const variants: Array<[string, string]> = [
    ['a\n.\nMAIL FROM:<x>\r\n', 'bare-lf'], // <LF>.<LF>
    ['a\n.\r\nMAIL FROM:<x>\r\n', 'bare-lf'], // <LF>.<CR><LF>
    ['a\r.\rMAIL FROM:<x>\r\n', 'bare-cr'], // <CR>.<CR>
    ['a\r\n.\nMAIL FROM:<x>\r\n', 'bare-lf'], // <CR><LF>.<LF>
    ['a\r\n.\rMAIL FROM:<x>\r\n', 'bare-cr'],
    ['a\0\r\n.\0\r\nMAIL FROM:<x>\r\n', 'nul'],
  ];
  for (const [input, problem] of variants) {
    const r = decode(input);
    assert.equal(r.done, false, JSON.stringify(input));
    assert.equal(r.problem, problem, JSON.stringify(input));
  }
  // After a bare CR the decoder keeps reading until the real terminator, then reports the problem.
  const r = decode('a\r.\rb\r\n.\r\nNEXT');
  assert.equal(r.done, true);
  assert.equal(r.problem, 'bare-cr');
  assert.equal(r.consumed, 'a\r.\rb\r\n.\r\n'.length);
});

void test('databytes and hop count', () => {
  assert.equal(decode('12345\r\n.\r\n', 6).problem, undefined);
  assert.equal(decode('123456\r\n.\r\n', 6).problem, 'too-big');
  const hops = (n: number): string => 'Received: x\r\n'.repeat(n) + '\r\nReceived: in body\r\n.\r\n';
  assert.equal(decode(hops(99)).problem, undefined);
  assert.equal(decode(hops(100)).problem, 'too-many-hops');
  assert.equal(decode('DELIVERED-TO: a\r\n'.repeat(100) + '.\r\n').problem, 'too-many-hops');
});

void test('QUAIL_BARECR=keep: a lone CR is kept as qmail keeps it; bare LF stays fatal; only CRLF.CRLF ends', () => {
  const golden: Array<[string, string]> = [
    ['line with\rCR inside\r\n.\r\n', 'line with\rCR inside\n'], // smtp-021
    ['a\r\r\nb\r\n.\r\n', 'a\r\nb\n'], // CR CR LF: the first CR is lone, the second ends the line
    ['a\rb\rc\r\n.\r\n', 'a\rb\rc\n'],
    ['x\r\n.\ry\r\n.\r\n', 'x\n.\ry\n'], // `.<CR>y` at a line start keeps the dot (qmail's state 3)
    ['x\r\n.\r\r\n.\r\n', 'x\n.\r\n'],
  ];
  for (const [input, out] of golden) {
    for (const size of [0, 1, 2]) {
      const r = decode(input, 0, size, true);
      assert.deepEqual(r, { out, consumed: input.length, done: true }, `${JSON.stringify(input)} chunk ${size}`);
      // the default (strict) refuses each of them
      assert.equal(decode(input, 0, size).problem, 'bare-cr', JSON.stringify(input));
    }
  }
  // <CR>.<CR> never ends DATA, and a bare LF is still fatal
  const cr = decode('a\r.\rMAIL FROM:<x>\r\n', 0, 0, true);
  assert.equal(cr.done, false);
  assert.equal(cr.problem, undefined);
  assert.equal(decode('a\r\n.\nMAIL FROM:<x>\r\n', 0, 0, true).problem, 'bare-lf');
  assert.equal(decode('a\n.\r\n', 0, 0, true).problem, 'bare-lf');
  assert.equal(decode('a\0\r\n.\r\n', 0, 0, true).problem, 'nul');
});
