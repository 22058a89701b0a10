// Golden tables for the SMTP parsers: envelope arguments (B.1), tcprules, received fields, policy domains.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyLocalIpHost, parseEnvelopeArg } from './address.js';
import { domainCandidates, envNumber } from './policy.js';
import { receivedLine, safeField } from './received.js';
import { matchTcpRules, parseTcpRules } from './tcprules.js';

void test('parseEnvelopeArg: B.1 golden table', () => {
  const table: Array<[string, string | null]> = [
    ['FROM:<a@b.test>', 'a@b.test'],
    ['FROM:a@b.test', 'a@b.test'],
    ['TO: <joe@local.test>', 'joe@local.test'],
    ['TO:<@relay1.test,@relay2.test:joe2@local.test>', 'joe2@local.test'],
    ['TO:<"john doe"@local.test>', 'john doe@local.test'],
    ['TO:<jo\\e3@local.test>', 'joe3@local.test'],
    ['TO:joe4@local.test trailing', 'joe4@local.test'],
    ['TO:   spaced@x', 'spaced@x'],
    ['FROM:<>', ''],
    ['FROM:<a@b> SIZE=100', 'a@b'],
    ['TO:<"a>b"@c>', 'a>b@c'],
    ['nothing', ''],
    ['TO:<' + 'x'.repeat(901) + '>', null],
    ['TO:<' + 'x'.repeat(900) + '>', 'x'.repeat(900)],
  ];
  for (const [arg, want] of table) assert.equal(parseEnvelopeArg(arg)?.address ?? null, want, arg);
  assert.equal(parseEnvelopeArg('FROM:<a@b> SIZE=100 body=8bitmime')?.params.get('BODY'), '8bitmime');
});

void test('applyLocalIpHost: B.2 only for this host\'s bracketed addresses', () => {
  const mine = (ip: string): boolean => ip === '192.0.2.2';
  assert.equal(applyLocalIpHost('joe@[192.0.2.2]', 'mx.test', mine), 'joe@mx.test');
  assert.equal(applyLocalIpHost('joe@[192.0.2.3]', 'mx.test', mine), 'joe@[192.0.2.3]');
  assert.equal(applyLocalIpHost('joe@[192.0.2.2].evil', 'mx.test', mine), 'joe@[192.0.2.2].evil');
  assert.equal(applyLocalIpHost('joe', 'mx.test', mine), 'joe');
});

void test('domainCandidates: the domain, then .suffixes longest first, never empty', () => {
  assert.deepEqual(domainCandidates('A.Sub.Example.TEST'), ['a.sub.example.test', '.sub.example.test', '.example.test', '.test']);
  assert.deepEqual(domainCandidates(''), []);
  assert.deepEqual(domainCandidates('local.test.'), ['local.test.', '.test.', '.']);
  assert.equal(envNumber('0'), 0);
  assert.equal(envNumber('1000x'), 1000);
  assert.equal(envNumber(undefined), undefined);
});

void test('tcprules: parse and lookup order', () => {
  const rules = parseTcpRules([
    '# comment', '', '127.:allow,RELAYCLIENT=""', '10.1.2.3:deny', '10.1.2.:allow,RELAYCLIENT="@gw.test",DATABYTES=5000',
    '192.0.2.4-6:allow,X=\'q,uoted\'', 'joe@10.9.9.9:allow,WHO=joe', '[::1]:allow,RELAYCLIENT=""', ':allow,=RELAYCLIENT',
    '10.1.2.3:allow', 'garbage', '1.2.3.4:allow,BAD NAME=1',
  ].join('\n'));
  assert.equal(rules.errors.length, 2);
  assert.equal(matchTcpRules(rules, '127.0.0.1')?.env.get('RELAYCLIENT'), '');
  assert.equal(matchTcpRules(rules, '10.1.2.3')?.action, 'deny'); // first rule for a key wins
  const r = matchTcpRules(rules, '10.1.2.200');
  assert.equal(r?.env.get('RELAYCLIENT'), '@gw.test');
  assert.equal(r?.env.get('DATABYTES'), '5000');
  assert.equal(matchTcpRules(rules, '192.0.2.5')?.env.get('X'), 'q,uoted');
  assert.equal(matchTcpRules(rules, '192.0.2.7')?.key, '');
  assert.equal(matchTcpRules(rules, '10.9.9.9', 'joe')?.env.get('WHO'), 'joe');
  assert.equal(matchTcpRules(rules, '::1')?.env.get('RELAYCLIENT'), '');
  assert.equal(matchTcpRules(rules, '203.0.113.1')?.env.get('RELAYCLIENT'), null);
  assert.equal(matchTcpRules(parseTcpRules(''), '1.2.3.4'), undefined);
});

void test('received: B.8 format, unsafe characters, RFC 3848 names', () => {
  const d = new Date(Date.UTC(2026, 10, 2, 3, 1, 2));
  assert.equal(
    receivedLine({ protocol: 'SMTP', remoteHost: 'bad host', helo: 'evil<host>;x y', remoteInfo: 'us(er)', remoteIp: '192.0.2.10', localHost: 'mx.test' }, d),
    'Received: from bad?host (HELO evil?host??x?y) (us?er?@192.0.2.10)\n  by mx.test with SMTP; 2 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(
    receivedLine({ protocol: 'ESMTPSA', remoteHost: 'Client.Test', helo: 'client.test', remoteIp: '192.0.2.10' }, d),
    'Received: from Client.Test (192.0.2.10)\n  by unknown with ESMTPSA; 2 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(safeField('a-b.c@[1.2.3.4]%+/=:'), 'a-b.c@[1.2.3.4]%+/=:');
});
