// Golden table for parseInstructions (docs/QMAIL.md D.6.1-D.6.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInstructions } from './instructions.js';
import type { Instruction } from './instructions.js';

const GOLDEN: ReadonlyArray<[string, Instruction[]]> = [
  ['./Maildir/\n', [{ kind: 'maildir', line: 1, path: './Maildir/' }]],
  ['./Maildir/', [{ kind: 'maildir', line: 1, path: './Maildir/' }]], // final newline supplied
  ['/var/mail/joe\n', [{ kind: 'mbox', line: 1, path: '/var/mail/joe' }]],
  ['.\n', [{ kind: 'mbox', line: 1, path: '.' }]],
  ['/\n', [{ kind: 'maildir', line: 1, path: '/' }]],
  ['Maildir/\n', [{ kind: 'forward', line: 1, target: 'Maildir/' }]], // mb-010: not a file line
  ['|/usr/bin/procmail -d joe  \n', [{ kind: 'program', line: 1, command: '/usr/bin/procmail -d joe' }]],
  ['| spaced program\t\n', [{ kind: 'program', line: 1, command: ' spaced program' }]],
  ['|\n', [{ kind: 'program', line: 1, command: '' }]],
  ['&fwd@x.test\n', [{ kind: 'forward', line: 1, target: 'fwd@x.test' }]],
  ['&\n', [{ kind: 'forward', line: 1, target: '' }]],
  ['& spaced@x.test\n', [{ kind: 'forward', line: 1, target: ' spaced@x.test' }]],
  ['  indented@x.test\n', [{ kind: 'forward', line: 1, target: '  indented@x.test' }]],
  ['# comment\n', [{ kind: 'comment', line: 1, text: '# comment' }]],
  ['#|not a program\n', [{ kind: 'comment', line: 1, text: '#|not a program' }]],
  ['+list\n', [{ kind: 'plus-list', line: 1 }]],
  ['+list \n', [{ kind: 'plus-list', line: 1 }]],
  ['+lists\n', [{ kind: 'plus-other', line: 1, text: '+lists' }]],
  ['\n', [{ kind: 'blank-first-line', line: 1 }]],
  ['', [{ kind: 'blank-first-line', line: 1 }]],
  [
    ' \t\n./Maildir/\n',
    [
      { kind: 'blank-first-line', line: 1 },
      { kind: 'maildir', line: 2, path: './Maildir/' },
    ],
  ],
  [
    'a@x\n\n  \nb@x\n',
    [
      { kind: 'forward', line: 1, target: 'a@x' },
      { kind: 'blank', line: 2 },
      { kind: 'blank', line: 3 },
      { kind: 'forward', line: 4, target: 'b@x' },
    ],
  ],
  ['x@y\r\n', [{ kind: 'forward', line: 1, target: 'x@y\r' }]], // only spaces and tabs are trimmed
  // a NUL ends what a line says (qmail-local's C strings); Maildir or mbox is still the line's last byte
  [
    './Maildir/\0junk\n&b@x\0junk\n|echo a\0b\n+list\0x\n./Maildir\0/\n#c\n\0x\n',
    [
      { kind: 'mbox', line: 1, path: './Maildir/' },
      { kind: 'forward', line: 2, target: 'b@x' },
      { kind: 'program', line: 3, command: 'echo a' },
      { kind: 'plus-list', line: 4 },
      { kind: 'maildir', line: 5, path: './Maildir' },
      { kind: 'comment', line: 6, text: '#c' },
      { kind: 'blank', line: 7 },
    ],
  ],
  ['\0./Maildir/\n', [{ kind: 'blank-first-line', line: 1 }]],
];

void test('parseInstructions golden table', () => {
  for (const [text, want] of GOLDEN) assert.deepEqual(parseInstructions(text), want, JSON.stringify(text));
});
