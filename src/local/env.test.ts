// Golden values for qmail-local's header lines and program environment (docs/QMAIL.md D.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headerLines, programEnv, qmailCtime, quoteSender } from './env.js';

const T = new Date(Date.UTC(2026, 10, 2, 3, 4, 5));

void test('qmailCtime pads the day with a zero', () => {
  assert.equal(qmailCtime(T), 'Mon Nov 02 03:04:05 2026');
});

void test('quoteSender follows quote2()', () => {
  const table: Array<[string, string]> = [
    ['', ''],
    ['joe@x.test', 'joe@x.test'],
    ['a b@x.test', '"a b"@x.test'],
    ['a"b@x@y', '"a\\"b@x"@y'],
    ['.joe@x', '".joe"@x'],
    ['#@[]', '#@[]'],
    ['no at', '"no at"'],
  ];
  for (const [s, want] of table) assert.equal(quoteSender(s), want, s);
});

void test('vd-003 example: virtual user with DEFAULT', () => {
  const a = {
    user: 'qovpop',
    home: '/h/qovpop',
    local: 'vdom-joe-list-a-b',
    dash: '-',
    ext: 'joe-list-a-b',
    domain: 'virt.test',
    sender: 'sender@origin.test',
    defaultDelivery: './Maildir/\n',
  };
  const h = headerLines(a, T);
  const env = programEnv(a, h, { newSender: a.sender, defaultPart: 'joe-list-a-b', path: '/q/bin:/usr/bin:/bin' });
  assert.deepEqual(env, {
    PATH: '/q/bin:/usr/bin:/bin',
    USER: 'qovpop',
    HOME: '/h/qovpop',
    LOCAL: 'vdom-joe-list-a-b',
    HOST: 'virt.test',
    RECIPIENT: 'vdom-joe-list-a-b@virt.test',
    DTLINE: 'Delivered-To: vdom-joe-list-a-b@virt.test\n',
    SENDER: 'sender@origin.test',
    NEWSENDER: 'sender@origin.test',
    RPLINE: 'Return-Path: <sender@origin.test>\n',
    UFLINE: 'From sender@origin.test Mon Nov 02 03:04:05 2026\n',
    EXT: 'joe-list-a-b',
    EXT2: 'list-a-b',
    EXT3: 'a-b',
    EXT4: 'b',
    HOST2: 'virt',
    HOST3: 'virt',
    HOST4: 'virt',
    DEFAULT: 'joe-list-a-b',
  });
});

void test('bracketed host, null sender, odd sender characters', () => {
  const a = {
    user: 'u',
    home: '/h',
    local: 'u',
    dash: '',
    ext: '',
    domain: '[192.0.2.7]',
    sender: '',
    defaultDelivery: '',
  };
  const h = headerLines(a, T);
  const env = programEnv(a, h, { newSender: '', path: '/bin' });
  assert.equal(env['HOST2'], '[192.0.2');
  assert.equal(env['HOST3'], '[192.0');
  assert.equal(env['HOST4'], '[192');
  assert.equal(env['RPLINE'], 'Return-Path: <>\n');
  assert.equal(env['UFLINE'], 'From MAILER-DAEMON Mon Nov 02 03:04:05 2026\n');
  assert.equal('DEFAULT' in env, false);
  const odd = headerLines({ ...a, sender: 'a b\tc@x', local: 'l\nm' }, T);
  assert.equal(odd.ufline, 'From a-b-c@x Mon Nov 02 03:04:05 2026\n');
  assert.equal(odd.dtline, 'Delivered-To: l_m@[192.0.2.7]\n');
});
