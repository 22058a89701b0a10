// Golden tables for the SMTP parsers: envelope arguments (B.1 and strict RFC 5321), received fields, policy domains.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressTooLong, applyLocalIpHost, parseEnvelopeArg } from './address.js';
import { domainCandidates, envNumber } from './policy.js';
import { receivedLine, safeField } from './received.js';
import { parseStrictMail, parseStrictRcpt } from './strict.js';

void test('parseEnvelopeArg: B.1 golden table', () => {
  const table: Array<[string, string]> = [
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
  ];
  for (const [arg, want] of table) assert.equal(parseEnvelopeArg(arg).address, want, arg);
  assert.equal(parseEnvelopeArg('FROM:<a@b> SIZE=100 body=8bitmime').params.get('BODY'), '8bitmime');
});

void test('addressTooLong: qmail-smtpd counts the terminating NUL, so 899 bytes is the longest address', () => {
  assert.equal(addressTooLong('x'.repeat(899)), false);
  assert.equal(addressTooLong('x'.repeat(900)), true);
  assert.equal(addressTooLong('\u00e9'.repeat(899)), false, 'bytes, not UTF-8');
});

/** The reply code and enhanced code a strict parse gives, or the address it accepts. */
const strictMail = (arg: string): string => {
  const r = parseStrictMail(arg);
  return r.ok ? `ok ${r.address}${r.size !== undefined ? ` size=${r.size}` : ''}` : `${r.reply[0]} ${r.reply[1]}`;
};
const strictRcpt = (arg: string): string => {
  const r = parseStrictRcpt(arg);
  return r.ok ? `ok ${r.address}` : `${r.reply[0]} ${r.reply[1]}`;
};

void test('parseStrictMail: RFC 5321 4.1.2 paths and the advertised parameters only (issue 12)', () => {
  const table: Array<[string, string]> = [
    ['FROM:<a@b.test>', 'ok a@b.test'],
    ['from:<a@b.test>', 'ok a@b.test'],
    ['FROM: <a@b.test>', 'ok a@b.test'], // a space after the colon is tolerated
    ['FROM:<>', 'ok '],
    ['FROM:<> BODY=8BITMIME SIZE=1000 SMTPUTF8 AUTH=<>', 'ok  size=1000'],
    ['FROM:<a@b.test> body=7bit', 'ok a@b.test'],
    ['FROM:<"john doe"@b.test>', 'ok john doe@b.test'],
    ['FROM:<"a\\"b"@b.test>', 'ok a"b@b.test'],
    ['FROM:<a.b+c@[192.0.2.1]>', 'ok a.b+c@[192.0.2.1]'],
    ['FROM:<a@[IPv6:2001:db8::1]>', 'ok a@[IPv6:2001:db8::1]'],
    ['FROM:<@r1.test,@r2.test:a@b.test>', 'ok a@b.test'],
    ['FROM:<j\xc3\xb6rg@b\xc3\xbccher.test> SMTPUTF8', 'ok j\xc3\xb6rg@b\xc3\xbccher.test'],
    ['FROM:<a@b-c.test>', 'ok a@b-c.test'],
    ['FROM:a@b.test', '501 5.1.7'],
    ['FROM <a@b.test>', '501 5.1.7'],
    ['<a@b.test>', '501 5.1.7'],
    ['FROM:<a@b.test', '501 5.1.7'],
    ['FROM:<a>', '501 5.1.7'],
    ['FROM:<@b.test>', '501 5.1.7'],
    ['FROM:<a@b.test.>', '501 5.1.7'],
    ['FROM:<a@-b.test>', '501 5.1.7'],
    ['FROM:<a..b@c.test>', '501 5.1.7'],
    ['FROM:<.a@c.test>', '501 5.1.7'],
    ['FROM:<a\\b@c.test>', '501 5.1.7'],
    ['FROM:<a@b.test@c.test>', '501 5.1.7'],
    ['FROM:<a@[300.1.1.1]>', '501 5.1.7'],
    ['FROM:<a@[IPv6:zz]>', '501 5.1.7'],
    ['FROM:<"open@b.test>', '501 5.1.7'],
    ['FROM:<a@b.test>SIZE=1', '501 5.1.7'],
    ['FROM:<a@b.test> X-EVIL=1', '555 5.5.4'],
    ['FROM:<a@b.test> RET=HDRS', '555 5.5.4'],
    ['FROM:<a@b.test> BODY=EVIL', '501 5.5.4'],
    ['FROM:<a@b.test> BODY=BINARYMIME', '501 5.5.4'],
    ['FROM:<a@b.test> SIZE=-1', '501 5.5.4'],
    ['FROM:<a@b.test> SIZE=abc', '501 5.5.4'],
    ['FROM:<a@b.test> SIZE=', '501 5.5.4'],
    ['FROM:<a@b.test> SIZE=123456789012345678901', '501 5.5.4'],
    ['FROM:<a@b.test> SIZE=18446744073709551617', 'ok a@b.test size=18446744073709552000'], // 20 digits: syntax ok, 552 in the session
    ['FROM:<a@b.test> SIZE=1 SIZE=2', '501 5.5.4'],
    ['FROM:<a@b.test> SMTPUTF8=yes', '501 5.5.4'],
    ['FROM:<a@b.test> AUTH=', '501 5.5.4'],
    ['FROM:<a@b.test> =x', '501 5.5.4'],
    // the length is the session's check, after the localiphost rewrite (addressTooLong)
    [`FROM:<${'x'.repeat(901)}@b.test>`, `ok ${'x'.repeat(901)}@b.test`],
  ];
  for (const [arg, want] of table) assert.equal(strictMail(arg), want, arg);
});

void test('parseStrictRcpt: RFC 5321 4.1.2 paths, <Postmaster>, no parameters (issue 12)', () => {
  const table: Array<[string, string]> = [
    ['TO:<joe@local.test>', 'ok joe@local.test'],
    ['To: <joe@local.test>', 'ok joe@local.test'],
    ['TO:<postmaster>', 'ok postmaster'],
    ['TO:<PostMaster>', 'ok PostMaster'],
    ['TO:<@relay.test:joe@local.test>', 'ok joe@local.test'],
    ['TO:<"user@victim.test"@local.test>', 'ok user@victim.test@local.test'],
    ['TO:<>', '501 5.1.3'],
    ['TO:<alice@local.test', '501 5.1.3'],
    ['TO:<@local.test>', '501 5.1.3'],
    ['TO:<@local.test:>', '501 5.1.3'],
    ['TO:<alice>', '501 5.1.3'],
    ['TO:<@x.test:postmaster>', '501 5.1.3'],
    ['TO:joe@local.test', '501 5.1.3'],
    ['TO:<victim.test!user>', '501 5.1.3'],
    ['TO:<user%victim.test@local.test>', 'ok user%victim.test@local.test'],
    ['TO:<alice@local.test> garbage', '555 5.5.4'],
    ['TO:<alice@local.test> NOTIFY=NEVER', '555 5.5.4'],
    ['TO:<alice@local.test> ', 'ok alice@local.test'],
  ];
  for (const [arg, want] of table) assert.equal(strictRcpt(arg), want, arg);
});

void test("applyLocalIpHost: B.2 only for this host's bracketed addresses", () => {
  const mine = (ip: string): boolean => ip === '192.0.2.2';
  assert.equal(applyLocalIpHost('joe@[192.0.2.2]', 'mx.test', mine), 'joe@mx.test');
  assert.equal(applyLocalIpHost('joe@[192.0.2.3]', 'mx.test', mine), 'joe@[192.0.2.3]');
  assert.equal(applyLocalIpHost('joe@[192.0.2.2].evil', 'mx.test', mine), 'joe@[192.0.2.2].evil');
  assert.equal(applyLocalIpHost('joe', 'mx.test', mine), 'joe');
  // as qmail's ip_scanbracket and ipme: any number of digits kept modulo 256, and 0.0.0.0 is always this host
  assert.equal(applyLocalIpHost('joe@[0192.0.2.0002]', 'mx.test', mine), 'joe@mx.test');
  assert.equal(applyLocalIpHost('joe@[448.0.2.258]', 'mx.test', mine), 'joe@mx.test');
  assert.equal(applyLocalIpHost('joe@[0.0.0.0]', 'mx.test', mine), 'joe@mx.test');
  assert.equal(applyLocalIpHost('joe@[192.0.2]', 'mx.test', mine), 'joe@[192.0.2]');
});

void test('domainCandidates: the domain, then .suffixes longest first, never empty', () => {
  assert.deepEqual(domainCandidates('A.Sub.Example.TEST'), [
    'a.sub.example.test',
    '.sub.example.test',
    '.example.test',
    '.test',
  ]);
  assert.deepEqual(domainCandidates(''), []);
  assert.deepEqual(domainCandidates('local.test.'), ['local.test.', '.test.', '.']);
  assert.equal(envNumber('0'), 0);
  assert.equal(envNumber('1000x'), 1000);
  assert.equal(envNumber(undefined), undefined);
});

void test('received: B.8 format, unsafe characters, RFC 3848 names', () => {
  const d = new Date(Date.UTC(2026, 10, 2, 3, 1, 2));
  assert.equal(
    receivedLine(
      {
        protocol: 'SMTP',
        remoteHost: 'bad host',
        helo: 'evil<host>;x y',
        remoteInfo: 'us(er)',
        remoteIp: '192.0.2.10',
        localHost: 'mx.test',
      },
      d,
    ),
    'Received: from bad?host (HELO evil?host??x?y) (us?er?@192.0.2.10)\n  by mx.test with SMTP; 2 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(
    receivedLine({ protocol: 'ESMTPSA', remoteHost: 'Client.Test', helo: 'client.test', remoteIp: '192.0.2.10' }, d),
    'Received: from Client.Test (192.0.2.10)\n  by unknown with ESMTPSA; 2 Nov 2026 03:01:02 -0000\n',
  );
  assert.equal(safeField('a-b.c@[1.2.3.4]%+/=:'), 'a-b.c@[1.2.3.4]%+/=:');
});
