// Golden tables for the POP3 input parsers and the wire conversion (CRLF, dot-stuffing, TOP).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { decodePlain, normaliseLogin, parseCommand, parsePop3Listener, uidFor } from './index.js';
import { parseNumber } from './parse.js';
import fc from 'fast-check';
import { toWire, wireInto, wireRoom, WireSizer } from './wire.js';

void test('parseCommand: keyword case, arguments, rest kept for PASS, garbage is null', () => {
  const table: [string, ReturnType<typeof parseCommand>][] = [
    ['STAT', { verb: 'STAT', args: [], rest: '' }],
    ['list 3', { verb: 'LIST', args: ['3'], rest: '3' }],
    ['TOP 1  10', { verb: 'TOP', args: ['1', '10'], rest: '1  10' }],
    ['PASS  two words ', { verb: 'PASS', args: ['two', 'words'], rest: ' two words ' }],
    ['', null],
    [' STAT', null],
    ['\x01\x02 x', null],
    ['ST4T', null],
    ['TOOLONGVERB', null],
  ];
  for (const [line, want] of table) assert.deepEqual(parseCommand(line), want, JSON.stringify(line));
});

void test('parseNumber: decimal ≥ min only', () => {
  const table: [string | undefined, number, number | null][] = [
    ['1', 1, 1],
    ['0', 1, null],
    ['0', 0, 0],
    ['007', 1, 7],
    ['-1', 0, null],
    ['+1', 1, null],
    ['1.5', 1, null],
    ['', 1, null],
    [undefined, 1, null],
    ['1234567890', 1, null],
    ['x', 0, null],
  ];
  for (const [s, min, want] of table) assert.equal(parseNumber(s, min), want, `${s} min ${min}`);
});

void test('normaliseLogin: user@domain, user%domain, default domain, junk refused', () => {
  const table: [string, string | undefined, string | null][] = [
    ['joe@Example.ORG', undefined, 'joe@example.org'],
    ['Joe%Example.org', undefined, 'Joe@example.org'],
    ['a%b%example.org', undefined, 'a%b@example.org'],
    ['a%b@example.org', undefined, 'a%b@example.org'],
    ['joe', 'Example.org', 'joe@example.org'],
    ['joe', undefined, null],
    ['@example.org', undefined, null],
    ['joe@', undefined, null],
    ['joe smith@example.org', undefined, null],
    ['joe\x00@example.org', undefined, null],
    ['', 'example.org', null],
  ];
  for (const [raw, dflt, want] of table) assert.equal(normaliseLogin(raw, dflt), want, raw);
});

void test('decodePlain: RFC 4616 golden table', () => {
  const b = (s: string): string => Buffer.from(s).toString('base64');
  assert.deepEqual(decodePlain(b('\0joe@x\0pw')), { authzid: '', authcid: 'joe@x', password: 'pw' });
  assert.deepEqual(decodePlain(b('joe@x\0joe@x\0p w')), { authzid: 'joe@x', authcid: 'joe@x', password: 'p w' });
  for (const bad of [b('joe@x\0pw'), b('\0\0pw'), b('\0joe\0'), b('a\0b\0c\0d'), '=', 'not base64!', 'abc']) {
    assert.equal(decodePlain(bad), null, bad);
  }
});

void test('uidFor: the unique name before ":"; names POP3 cannot carry get a stable digest', () => {
  assert.equal(uidFor('1700000000.M1P2.host:2,S'), '1700000000.M1P2.host');
  assert.equal(uidFor('1700000000.12_3.host\\057x'), '1700000000.12_3.host\\057x');
  const odd = uidFor('with space');
  assert.match(odd, /^H[0-9a-f]{40}$/);
  assert.equal(uidFor('with space:2,'), odd);
  assert.match(uidFor('x'.repeat(71)), /^H/);
  assert.equal(uidFor('x'.repeat(70)), 'x'.repeat(70));
});

async function wire(input: string | Buffer, bodyLines?: number, chunk = 3): Promise<string> {
  const buf = Buffer.from(input);
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  const out: Buffer[] = [];
  for await (const b of toWire(Readable.from(parts), bodyLines)) out.push(b);
  return Buffer.concat(out).toString('latin1');
}

void test('toWire: CRLF, dot-stuffing, final line ended, TOP cut — across chunk boundaries', async () => {
  const table: [string, number | undefined, string][] = [
    ['a\nb\n', undefined, 'a\r\nb\r\n'],
    ['a\r\nb\r\n', undefined, 'a\r\nb\r\n'],
    ['.\n..x\n.', undefined, '..\r\n...x\r\n..\r\n'],
    ['no newline', undefined, 'no newline\r\n'],
    ['ends in cr\r', undefined, 'ends in cr\r\n'],
    ['lone\rcr\n', undefined, 'lone\rcr\r\n'],
    ['', undefined, ''],
    ['H: 1\n\nb1\nb2\n', 0, 'H: 1\r\n\r\n'],
    ['H: 1\n\nb1\nb2\n', 1, 'H: 1\r\n\r\nb1\r\n'],
    ['H: 1\r\n\r\n.b1\r\nb2\r\n', 1, 'H: 1\r\n\r\n..b1\r\n'],
    ['H: 1\nH: 2\n', 0, 'H: 1\r\nH: 2\r\n'],
    ['H: 1\n\nb1', 5, 'H: 1\r\n\r\nb1\r\n'],
  ];
  for (const [input, lines, want] of table) {
    for (const chunk of [1, 2, 3, 1000]) {
      assert.equal(await wire(input, lines, chunk), want, `${JSON.stringify(input)} top=${lines} chunk=${chunk}`);
    }
  }
});

/** RFC 1939 by the line, the plain way: the reference toWire and wireInto are checked against. */
function reference(input: string, bodyLines?: number): string {
  const pieces = input.split('\n');
  if (pieces[pieces.length - 1] === '') pieces.pop(); // the text after the last LF, when there is any, is a line too
  let out = '';
  let inHeader = true;
  let left = bodyLines ?? Infinity;
  for (const piece of pieces) {
    if (!inHeader && left-- <= 0) break;
    const line = piece.endsWith('\r') ? piece.slice(0, -1) : piece;
    out += `${line.startsWith('.') ? '.' : ''}${line}\r\n`;
    if (line === '') inHeader = false;
  }
  return out;
}

void test('toWire and wireInto: the same bytes as the line-by-line reference, for any text and any chunking', async () => {
  const text = fc.string({ unit: fc.constantFrom('a', '.', '\r', '\n', ' '), maxLength: 60 });
  await fc.assert(
    fc.asyncProperty(
      text,
      fc.option(fc.nat(4), { nil: undefined }),
      fc.integer({ min: 1, max: 7 }),
      async (t, n, c) => {
        const want = reference(t, n);
        assert.equal(await wire(t, n, c), want);
        // as sendStored uses it: after a status line, in exactly wireRoom's bytes (a write past them would be lost)
        const data = Buffer.from(t, 'latin1');
        const out = Buffer.alloc(3 + wireRoom(data.length));
        assert.equal(out.subarray(3, wireInto(data, n, out, 3)).toString('latin1'), want);
      },
    ),
    { numRuns: 3000 },
  );
});

void test('WireSizer: equals the bytes toWire sends, without the stuffed dots', async () => {
  for (const input of ['a\nb\n', 'a\r\nb', 'x\r', '', '.\n.\n', 'lone\rcr\n', 'H\n\n' + 'l\n'.repeat(100)]) {
    const sent = await wire(input, undefined, 2);
    const stuffed = (sent.match(/(^|\r\n)\./g) ?? []).length;
    const sizer = new WireSizer();
    for (let i = 0; i < input.length; i += 2) sizer.add(Buffer.from(input.slice(i, i + 2)));
    assert.equal(sizer.total(), sent.length - stuffed, JSON.stringify(input));
  }
});

void test('parsePop3Listener: control/listeners pop3 lines', () => {
  const table: [string, ReturnType<typeof parsePop3Listener>][] = [
    ['127.0.0.1:2110 pop3', { host: '127.0.0.1', port: 2110, implicitTls: false }],
    [':995 pop3 tls=implicit maxperip=5', { host: '0.0.0.0', port: 995, implicitTls: true, maxPerIp: 5 }],
    [
      '[::1]:110 pop3 plaintext=allow idle=60',
      { host: '::1', port: 110, implicitTls: false, plaintext: 'allow', idleTimeoutMs: 60_000 },
    ],
    [
      '127.0.0.1:110 pop3 plaintext=loopback',
      { host: '127.0.0.1', port: 110, implicitTls: false, plaintext: 'loopback' },
    ],
    ['127.0.0.1:110 pop3 plaintext=tls', { host: '127.0.0.1', port: 110, implicitTls: false, plaintext: 'tls' }],
    [
      '127.0.0.1:110 pop3 maxconn=40 stresstimeout=0',
      { host: '127.0.0.1', port: 110, implicitTls: false, maxConnections: 40, stressTimeoutMs: 0 },
    ],
    ['127.0.0.1:2110 smtp', 'kind "smtp" is not pop3'],
    ['127.0.0.1:99999 pop3', '"127.0.0.1:99999" is not ADDRESS:PORT'],
    [
      '127.0.0.1:110 pop3 tls=yes',
      'option "tls=yes" is not one of tls=implicit|stls, plaintext=tls|allow|loopback, idle=SECONDS, maxperip=N, maxconn=N, stresstimeout=SECONDS',
    ],
    [
      '127.0.0.1:110 pop3 idle=0',
      'option "idle=0" is not one of tls=implicit|stls, plaintext=tls|allow|loopback, idle=SECONDS, maxperip=N, maxconn=N, stresstimeout=SECONDS',
    ],
  ];
  for (const [line, want] of table) assert.deepEqual(parsePop3Listener(line), want, line);
});
