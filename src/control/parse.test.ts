// Golden tables for the control-file syntaxes (docs/QMAIL.md 0.2-0.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseList, parseMap, parseNumber, parseSingle } from './index.js';

const LISTS: ReadonlyArray<readonly [string, string[]]> = [
  ['', []],
  ['a.test\n', ['a.test']],
  ['a.test', ['a.test']], // last line without \n counts
  ['a.test\nb.test', ['a.test', 'b.test']],
  ['# comment\na.test\n', ['a.test']],
  ['a.test # not a comment\n', ['a.test # not a comment']],
  ['  #indented\n', ['  #indented']], // leading whitespace kept, so this is not a comment
  ['a.test  \t\n', ['a.test']], // trailing spaces/tabs removed
  [' dom.test\n', [' dom.test']], // leading whitespace kept (loc-003)
  ['\n\n \t\n\nx\n', ['x']], // blank and whitespace-only lines dropped
  ['a.test\r\n', ['a.test\r']], // CR is not whitespace to qmail
  ['Mixed.CASE\n', ['Mixed.CASE']], // case kept; comparison folds
  ['a\n\nb\n#c\nd', ['a', 'b', 'd']],
  ['dup\ndup\n', ['dup', 'dup']],
  // qmail's control_readfile keeps a NUL inside a line and constmap ends an entry at each one; a line starting with
  // NUL is dropped (C string)
  ['a.test\0b.test\n', ['a.test', 'b.test']],
  ['a.test\0\n', ['a.test', '']],
  ['\0a.test\nb.test\n', ['b.test']],
  ['a.test\0#c \n', ['a.test', '#c']],
];

void test('parseList: 0.2 golden table', () => {
  for (const [text, want] of LISTS) assert.deepEqual(parseList(text), want, JSON.stringify(text));
});

const MAPS: ReadonlyArray<readonly [string, Array<[string, string, string, number]>]> = [
  // [text, [key, pattern, value, line]...]
  ['virt.test:vdom\n', [['virt.test', 'virt.test', 'vdom', 1]]],
  ['virt.test:v:x\n', [['virt.test', 'virt.test', 'v:x', 1]]], // first ':' splits (vd-014)
  ['c.test\n', []], // no ':' -> ignored (vd-013)
  [':vall\n', [['', '', 'vall', 1]]], // empty pattern
  ['dom:\n', [['dom', 'dom', '', 1]]], // empty value kept (exception)
  ['Virt.TEST:VDom\n', [['virt.test', 'Virt.TEST', 'VDom', 1]]], // key lowercased, case of both kept
  ['a:1\nA:2\n', [['a', 'A', '2', 2]]], // duplicates: last line wins (vd-009, rt-013)
  [
    '# c:x\n\n a.test:va\nb.test:vb   \t\n#d:x\nd:vd2',
    [
      [' a.test', ' a.test', 'va', 3],
      ['b.test', 'b.test', 'vb', 4],
      ['d', 'd', 'vd2', 6],
    ],
  ],
  ['relay.test:[1.2.3.4]:2525\n', [['relay.test', 'relay.test', '[1.2.3.4]:2525', 1]]],
  // a NUL ends an entry (constmap): `x.test` has no ':' and is ignored, `:relay` is an entry of its own
  ['x.test\0:127.0.0.1:25\n', [['', '', '127.0.0.1:25', 1]]],
  [
    'a:1\0b:2\n\0c:3\n',
    [
      ['a', 'a', '1', 1],
      ['b', 'b', '2', 1],
    ],
  ],
];

void test('parseMap: 0.3 golden table', () => {
  for (const [text, want] of MAPS) {
    const got = [...parseMap(text).entries()].map(([k, e]) => [k, e.pattern, e.value, e.line]);
    assert.deepEqual(got, want, JSON.stringify(text));
  }
});

const SINGLES: ReadonlyArray<readonly [string, string]> = [
  ['mx.test\n', 'mx.test'],
  ['mx.test', 'mx.test'],
  ['mx.test \t\n', 'mx.test'],
  ['mx.test\nsecond\n', 'mx.test'], // only the first line
  ['\nsecond\n', ''], // an empty first line is an empty value
  ['  lead\n', '  lead'],
  ['mx.test\r\n', 'mx.test\r'], // qmail strips only \n, space and tab
  ['', ''],
];

void test('parseSingle: 0.4 golden table', () => {
  for (const [text, want] of SINGLES) assert.equal(parseSingle(text), want, JSON.stringify(text));
});

const NUMBERS: ReadonlyArray<readonly [string, number | null]> = [
  ['3600\n', 3600],
  ['3600', 3600],
  ['0\n', 0],
  ['12abc\n', 12], // trailing junk ignored
  ['007\n', 7],
  [' 12\n', null], // first character not a digit: absent
  ['-5\n', null],
  ['abc\n', null],
  ['', null],
  ['\n42\n', null], // only the first line counts
];

void test('parseNumber: 0.5 golden table', () => {
  for (const [text, want] of NUMBERS) assert.equal(parseNumber(text), want, JSON.stringify(text));
});

void test('parseNumber: a C int as qmail-send keeps it (control_readint), ret-984', () => {
  const WRAPS: ReadonlyArray<readonly [string, 'int32' | 'uint32', number | null]> = [
    ['4294967346\n', 'int32', 50],
    ['4294967296\n', 'uint32', 0],
    ['2147483648\n', 'int32', -2147483648],
    ['4294967295 junk\n', 'uint32', 4294967295],
    ['18446744073709551666\n', 'int32', 50], // 2^64 + 50: digit by digit, nothing lost
    ['x1\n', 'int32', null],
  ];
  for (const [text, wraps, want] of WRAPS) assert.equal(parseNumber(text, wraps), want, JSON.stringify(text));
});
