// Golden tables for the users/assign parser (docs/QMAIL.md C.1, C.2) and the records qmail-newu writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssignFormatError, assignRecords, parseAssign } from './index.js';

const ERRORS: Array<[string, string, number, RegExp]> = [
  ['missing dot', '=joe:joe:503:78:/home/joe:::\n', 2, /terminating "\." line/],
  ['empty file', '', 1, /terminating "\." line/],
  ['no newline on last line', '=joe:joe:503:78:/home/joe:::', 1, /no newline/],
  ['blank line', '=joe:joe:503:78:/home/joe:::\n\n.\n', 2, /blank line/],
  ['no colon', 'joe\n.\n', 1, /no ":"/],
  ['starts with colon', ':joe:503:78:/home/joe::::\n.\n', 1, /starts with ":"/],
  ['too few fields', '=joe:joe:503:78:/home/joe::\n.\n', 1, /5 ":" after the local field, need 7/],
  ['NUL byte', '=jo\0e:joe:503:78:/home/joe:::\n.\n', 1, /NUL/],
  ['error on a later line', '=a:u:1:2:/h:::\n=b:u:1:2:/h::\n.\n', 2, /need 7/],
];

for (const [name, text, line, what] of ERRORS) {
  void test(`parseAssign rejects: ${name}`, () => {
    assert.throws(
      () => parseAssign(text),
      (err: unknown) => {
        assert.ok(err instanceof AssignFormatError);
        assert.equal(err.line, line);
        assert.match(err.what, what);
        assert.equal(err.temporary, true);
        assert.match(err.message, new RegExp(`^bad format in users/assign line ${line}: `));
        return true;
      },
    );
  });
}

const hexRecords = (text: string): string[] =>
  assignRecords(parseAssign(text)).map(([k, v]) => `${k}=${v}`.replace(/\0/g, '|'));

const GOOD: Array<[string, string, string[]]> = [
  ['one simple', '=joe.shmoe:joe:503:78:/home/joe:::\n.\n', ['!joe.shmoe|=joe|503|78|/home/joe||', '=']],
  [
    'man page mix',
    '+:alias:7790:2108:/var/qmail/alias:-::\n+joe-:joe:507:100:/home/joe:-::\n=joe:joe:507:100:/home/joe:::\n.\n',
    ['!=alias|7790|2108|/var/qmail/alias|-|', '!joe-=joe|507|100|/home/joe|-|', '!joe|=joe|507|100|/home/joe||', '=-'],
  ],
  [
    'uppercase: keys lowered, values and wildchars kept',
    '=Joe.Shmoe:Joe:503:78:/home/Joe:-:Ext:\n+TEAM:team:505:78:/h:-::\n.\n',
    ['!joe.shmoe|=Joe|503|78|/home/Joe|-|Ext', '!team=team|505|78|/h|-|', '=M'],
  ],
  [
    'other first characters are simple',
    '#c:u:1:2:/h:::\n joe:u:1:2:/h:::\n=:e:1:2:/h:::\n.\n',
    ['!c|=u|1|2|/h||', '!joe|=u|1|2|/h||', '!|=e|1|2|/h||', '='],
  ],
  ['stops at the dot line', '=a:u:1:2:/h/a:::\n.end\n=b:u:1:2:/h/b:::\ngarbage\n', ['!a|=u|1|2|/h/a||', '=']],
  ['final dot without newline', '=a:u:1:2:/h/a:::\n.', ['!a|=u|1|2|/h/a||', '=']],
  [
    'CRLF: CR lands in the ignored tail',
    '=joe:joe:503:78:/home/joe:::\r\n.\r\n',
    ['!joe|=joe|503|78|/home/joe||', '='],
  ],
  ['text after the seventh colon ignored', '=a:u:1:2:/h:-:x:junk:more\n.\n', ['!a|=u|1|2|/h|-|x', '=']],
  [
    'wildchars distinct, first appearance',
    '+a-:u:1:2:/h:-::\n+b.:u:1:2:/h:-::\n+c-:u:1:2:/h:-::\n+:u:1:2:/h:-::\n.\n',
    ['!a-=u|1|2|/h|-|', '!b.=u|1|2|/h|-|', '!c-=u|1|2|/h|-|', '!=u|1|2|/h|-|', '=-.'],
  ],
];

for (const [name, text, expected] of GOOD) {
  void test(`parseAssign + records: ${name}`, () => {
    assert.deepEqual(hexRecords(text), expected);
  });
}
