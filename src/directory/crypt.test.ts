// Imported crypt(3) hashes verify: golden vectors from libxcrypt (DES, BSDi DES, bcrypt) and random ones made by perl's crypt() now.
// tier: system (needs perl)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { cryptScheme, desCrypt, verifyCrypt } from './crypt.js';
import { canVerify, hashScheme, verifyPassword } from './password.js';

/** [password, hash] made once with `perl -e 'print crypt(PW, SETTING)'` on Debian (libxcrypt). */
const GOLDEN: ReadonlyArray<readonly [string, string]> = [
  ['', 'abmF1QH4PEr.E'],
  ['secret', 'abNANd1rDfiNc'],
  ['password', 'zZDDIZ0NOlPzw'],
  ['12345678', './qw5JW./79Vg'],
  ['héllo wörld', 'XyYj8Y3poKsvA'],
  ['secret', '_J9..abcd/H6HLCcf7nw'],
  ['a much longer password here', '_J9..abcdyGuz0ZsEn4I'],
  ['', '_/...SALTxR6uiWkKh62'],
  ['café-€', '_6C/.yaiu.i1Ft72f2pk'],
  ['', '$2b$04$abcdefghijklmnopqrstuubyCG3zY1GIXMyxfivm.ClDiInHzxjiq'],
  ['pw', '$2y$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q'],
  ['pw', '$2a$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q'],
  ['pw', '$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q'],
  ['correct horse', '$2y$04$0123456789./ABCDEFGHI.3zvLq/6u1ucK1va2WHR.LTk0pjGr02W'],
  ['grüße €', '$2a$04$zyxwvutsrqponmlkjihgfe5d1URLPJDPEp9md2/4ld1hu4ioEkpQC'],
  ['x'.repeat(72), '$2b$04$sixtyfourcharsofsaltxuDMVYRGq6CVNBYtqp0fkIwfDgwZoUqfa'],
  ['é'.repeat(40), '$2y$04$AyyyyyyyyyyyyyyyyyyyyuWmN/uAnypO.6ry8.ve4yEzlhSE4hHNa'],
];

void test('golden vectors: DES, BSDi DES and bcrypt ($2a$ $2b$ $2y$) verify; a wrong password does not', async () => {
  for (const [pw, hash] of GOLDEN) {
    assert.equal(await verifyPassword(pw, hash), true, `${JSON.stringify(pw)} against ${hash}`);
    assert.equal(await verifyPassword(`Q${pw}`, hash), false, `Q${JSON.stringify(pw)} must not match ${hash}`);
    if (!hash.startsWith('$'))
      assert.equal(desCrypt(Buffer.from(pw), hash.startsWith('_') ? hash.slice(0, 9) : hash.slice(0, 2)), hash);
  }
});

void test('truncation as crypt(3) does it: DES reads 8 bytes of 7 bits, bcrypt 72 bytes; BSDi DES reads everything', async () => {
  assert.equal(await verifyPassword('passwordEXTRA', 'zZDDIZ0NOlPzw'), true);
  assert.equal(await verifyPassword('passwor', 'zZDDIZ0NOlPzw'), false);
  // Raw bytes: only the low 7 bits count, so setting or clearing the high bit changes nothing; a NUL ends the key.
  assert.equal(desCrypt(Buffer.from([0xff, 0x80, 0x61, 0x62, 0x63]), '9.'), '9.6Dxva80kUUI');
  assert.equal(desCrypt(Buffer.from([0x7f, 0x80, 0xe1, 0x62, 0xe3]), '9.'), '9.6Dxva80kUUI');
  assert.equal(desCrypt(Buffer.from('secret\0ignored'), 'ab'), 'abNANd1rDfiNc');
  assert.equal(
    await verifyPassword(`${'x'.repeat(72)}ignored`, '$2b$04$sixtyfourcharsofsaltxuDMVYRGq6CVNBYtqp0fkIwfDgwZoUqfa'),
    true,
  );
  assert.equal(
    await verifyPassword('x'.repeat(71), '$2b$04$sixtyfourcharsofsaltxuDMVYRGq6CVNBYtqp0fkIwfDgwZoUqfa'),
    false,
  );
  assert.equal(await verifyPassword('a much longer password', '_J9..abcdyGuz0ZsEn4I'), false);
});

void test('malformed and unknown hashes never match and never throw', async () => {
  const bad = [
    '',
    '*',
    '!',
    'x',
    '!!abNANd1rDfiNc',
    'abNANd1rDfiN',
    'abNANd1rDfiNcc',
    'ab!ANd1rDfiNc',
    'abNANd1rDfiN\n',
    '_J9..abcd/H6HLCcf7n',
    '_J9..abcd/H6HLCcf7nw!',
    '_....abcdqv914M7v2rI',
    '_J9.!abcd/H6HLCcf7nw',
    '$2y$',
    '$2y$05$',
    '$2y$05$abcdefghijklmnopqrstuu',
    '$2y$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9',
    '$2y$5$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9qq',
    '$2y$03$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q',
    '$2y$32$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q',
    '$2x$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q',
    '$2y$05$abcdefghijklmnopqrstu!HIrMEWpUCQe2YqFR3sXwQ75u4od..9q',
    '$1$',
    '$1$$',
    '$5$',
    '$6$rounds=x$',
    '$7$CU..../....',
    '$scrypt$ln=22,r=99,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    '$scrypt$ln=0,r=8,p=1$AAAA$AAAA',
    '$scrypt$ln=15,r=8,p=1$!!$??',
    '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA',
  ];
  for (const h of bad) {
    for (const pw of ['', 'pw', 'secret']) {
      assert.equal(await verifyPassword(pw, h), false, `${JSON.stringify(pw)} against ${JSON.stringify(h)}`);
      assert.equal(await verifyCrypt(pw, h), false, `verifyCrypt ${JSON.stringify(pw)} against ${JSON.stringify(h)}`);
    }
  }
  assert.equal(desCrypt(Buffer.from('pw'), 'a'), null);
  assert.equal(desCrypt(Buffer.from('pw'), '_J9..ab'), null);
});

void test('scheme names (user info) and what the import can verify', () => {
  const rows: Array<[string, string, boolean]> = [
    ['', 'none', false],
    ['$scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U', 'scrypt', true],
    ['$1$abcdefgh$0123456789012345678901', 'md5-crypt', true],
    ['$5$salt$x', 'sha256-crypt', true],
    ['$6$salt$abc', 'sha512-crypt', true],
    ['$2y$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q', 'bcrypt', true],
    ['$2a$10$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q', 'bcrypt', true],
    ['$2x$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q', '$2x$', false],
    ['$2y$05$short', '$2y$', false],
    ['abNANd1rDfiNc', 'des-crypt', true],
    ['_J9..abcd/H6HLCcf7nw', 'bsdi-crypt', true],
    ['ab!ANd1rDfiNc', 'unknown', false],
    ['plaintext', 'unknown', false],
  ];
  for (const [h, scheme, ok] of rows) {
    assert.equal(hashScheme(h), scheme, h);
    assert.equal(canVerify(h), ok, h);
    assert.equal(cryptScheme(h) !== null, ok && scheme !== 'scrypt', h);
  }
});

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const CHARS = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
  'é',
  'ß',
  '€',
  '日',
  'ÿ',
  '\u007f',
];
const pick = (s: string, n: number): string => Array.from({ length: n }, () => s[randomInt(s.length)] ?? '.').join('');
const randomPassword = (max: number): string =>
  Array.from({ length: randomInt(max + 1) }, () => CHARS[randomInt(CHARS.length)] ?? 'a').join('');

/** One perl for all: lines `HEX-PASSWORD SETTING` in, the crypt() of each out (`undef` when libc refuses). */
function perlCrypt(cases: ReadonlyArray<readonly [string, string]>): string[] {
  const input = cases.map(([pw, s]) => `${Buffer.from(pw, 'utf8').toString('hex')} ${s}\n`).join('');
  const r = spawnSync(
    'perl',
    ['-ne', 'chomp; my ($h, $s) = split / /, $_, 2; print((crypt(pack("H*", $h), $s) // "undef"), "\\n")'],
    { input, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `perl: ${r.stderr}`);
  return r.stdout.split('\n').slice(0, cases.length);
}

void test('random passwords and salts: ours agrees with the system crypt() (perl) for DES, BSDi DES and bcrypt', async () => {
  const cases: Array<readonly [string, string]> = [];
  for (let i = 0; i < 28; i++) cases.push([randomPassword(12), pick(ALPHABET, 2)]);
  // BSDi: a small iteration count (first character non-zero) keeps the test quick; salts are 24 random bits.
  for (let i = 0; i < 8; i++)
    cases.push([randomPassword(30), `_${pick(ALPHABET.slice(1, 20), 1)}...${pick(ALPHABET, 4)}`]);
  for (let i = 0; i < 14; i++)
    cases.push([randomPassword(i % 3 === 0 ? 90 : 16), `$2${pick('aby', 1)}$04$${pick(ALPHABET, 22)}`]);
  const want = perlCrypt(cases);
  for (const [i, [pw, setting]] of cases.entries()) {
    const hash = want[i] ?? '';
    const what = `${JSON.stringify(pw)} with ${setting}: libc says ${hash}`;
    assert.notEqual(hash, 'undef', what);
    if (!setting.startsWith('$')) assert.equal(desCrypt(Buffer.from(pw, 'utf8'), setting), hash, what);
    else assert.equal(hash.slice(0, 28), setting.slice(0, 28), what);
    assert.equal(await verifyPassword(pw, hash), true, what);
  }
});
