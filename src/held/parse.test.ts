// The small languages of held domains: ATRN's argument (RFC 2645 section 4.2) and a held home's HELD settings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAtrn } from './odmr.js';
import { parseSettings } from './registry.js';

void test('ATRN arguments: none means every domain of the login; a comma list; anything else is a syntax error', () => {
  assert.deepEqual(parseAtrn(''), []);
  assert.deepEqual(parseAtrn('  '), []);
  assert.deepEqual(parseAtrn('Some.Example.COM'), ['some.example.com']);
  assert.deepEqual(parseAtrn('a.test, b.test'), ['a.test', 'b.test']);
  for (const bad of ['a.test,', ',a.test', 'bad domain', 'a..test', 'a.test;b.test', '-a.test', 'x'.repeat(300)])
    assert.equal(parseAtrn(bad), null, bad);
});

void test('HELD settings: every, etrn, atrn, autoturn; bad or unknown lines are skipped', () => {
  assert.deepEqual(
    parseSettings('every 120\netrn yes\natrn Cust@ISP.test\nautoturn 192.0.2.0/24\nautoturn ::1/128\n'),
    {
      every: 120,
      etrn: true,
      atrn: 'cust@isp.test',
      autoturn: ['192.0.2.0/24', '::1/128'],
    },
  );
  assert.deepEqual(parseSettings('every soon\nevery 0\netrn maybe\nfoo bar\n'), {
    every: undefined,
    etrn: false,
    atrn: '',
    autoturn: [],
  });
});
