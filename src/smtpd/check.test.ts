// AuthResultsStrip (golden cases, every chunk split; fields over 64 KiB; the authserv-id's parser on deep nesting) and Spool.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthResultsStrip, MAX_AUTH_RESULTS_FIELD, Spool, authservId } from './check.js';

const CASES: Array<[string, string, number]> = [
  // input, output, fields removed
  ['Authentication-Results: mx.test; spf=pass\nSubject: a\n\nbody\n', 'Subject: a\n\nbody\n', 1],
  [
    'Subject: a\nAUTHENTICATION-RESULTS:MX.TEST;\n dkim=pass\n\tdmarc=pass\nTo: b\n\nx\n',
    'Subject: a\nTo: b\n\nx\n',
    1,
  ],
  ['Authentication-Results: (c) mx.test (c); none\n\n', '\n', 1],
  ['Authentication-Results: mx.test.evil; spf=pass\n\nx\n', 'Authentication-Results: mx.test.evil; spf=pass\n\nx\n', 0],
  ['Authentication-Results: other.test; spf=pass\n\n', 'Authentication-Results: other.test; spf=pass\n\n', 0],
  // in the body it is text, not a field
  [
    'Subject: a\n\nAuthentication-Results: mx.test; spf=pass\n',
    'Subject: a\n\nAuthentication-Results: mx.test; spf=pass\n',
    0,
  ],
  // a message without a body
  ['Subject: a\nAuthentication-Results: mx.test; x', 'Subject: a\n', 1],
  // RFC 5322 comments nest, hold quoted-pairs and fold; RFC 8601's authserv-id may be a quoted-string
  ['Authentication-Results: (a (b) c) mx.test; dkim=pass header.d=bank.example\n\nx\n', '\nx\n', 1],
  ['Authentication-Results: (x\n y) mx.test; dkim=pass header.d=bank.example\nTo: b\n\n', 'To: b\n\n', 1],
  ['Authentication-Results: (x\n (y\n\t) z)\n mx.test\n ; dkim=pass\n\n', '\n', 1],
  ['Authentication-Results: (a \\) b) mx.test; dkim=pass\n\n', '\n', 1],
  ['Authentication-Results: "mx.test"; dkim=pass header.d=bank.example\n\n', '\n', 1],
  ['Authentication-Results: (c)"MX.Te\\st."(c); dkim=pass\n\n', '\n', 1],
  ['Authentication-Results: mx.test.; dkim=pass\n\n', '\n', 1],
  ['Authentication-Results:\n "mx.\n test"; dkim=pass\n\n', 'Authentication-Results:\n "mx.\n test"; dkim=pass\n\n', 0],
  // what cannot be read is not passed on: a comment or quoted-string that never ends, no authserv-id at all
  ['Authentication-Results: (a (b) mx.test; dkim=pass\n\n', '\n', 1],
  ['Authentication-Results: "mx.test; dkim=pass\n\n', '\n', 1],
  ['Authentication-Results: ; dkim=pass\nTo: b\n\n', 'To: b\n\n', 1],
  // other hosts' fields stay, this host's name in a comment or inside a longer name included
  [
    'Authentication-Results: (mx.test) other.test; spf=pass\n\n',
    'Authentication-Results: (mx.test) other.test; spf=pass\n\n',
    0,
  ],
  [
    'Authentication-Results: (a (mx.test) \\( b) "mx.test.evil"; spf=pass\n\n',
    'Authentication-Results: (a (mx.test) \\( b) "mx.test.evil"; spf=pass\n\n',
    0,
  ],
  // a field of another name is not looked at; a continuation line before any field is passed on
  [' x\nX-Authentication-Results: mx.test; a\n\n', ' x\nX-Authentication-Results: mx.test; a\n\n', 0],
];

void test('Authentication-Results fields naming this host are removed, however the chunks fall', () => {
  for (const [input, output, removed] of CASES) {
    for (let cut = 0; cut <= input.length; cut++) {
      const s = new AuthResultsStrip('mx.test');
      const out = Buffer.concat([
        s.push(Buffer.from(input.slice(0, cut))),
        s.push(Buffer.from(input.slice(cut))),
        s.end(),
      ]).toString('latin1');
      assert.equal(out, output, `${JSON.stringify(input)} cut at ${cut}`);
      assert.equal(s.removed, removed);
    }
  }
});

/** The strip's output for `input` pushed in chunks of `size` bytes. */
function stripped(input: string, size: number, host = 'mx.test'): { out: string; removed: number } {
  const s = new AuthResultsStrip(host);
  const parts: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) parts.push(s.push(Buffer.from(input.slice(i, i + size), 'latin1')));
  parts.push(s.end());
  return { out: Buffer.concat(parts).toString('latin1'), removed: s.removed };
}

void test('an Authentication-Results field too long to judge is removed whole; any other long field is kept', () => {
  const tail = ' (zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz)\n'.repeat(2000); // over 64 KiB
  assert.ok(tail.length > MAX_AUTH_RESULTS_FIELD);
  const ours = `Authentication-Results: mx.test; dkim=pass header.d=bank.example\n${tail}Subject: a\n\nbody\n`;
  const theirs = `Authentication-Results: other.test; dkim=pass\n${tail}Subject: a\n\nbody\n`;
  const long = `X-Long: a\n${tail}Subject: a\n\nbody\n`;
  for (const size of [1, 7, 4096, 65536, ours.length]) {
    assert.deepEqual(stripped(ours, size), { out: 'Subject: a\n\nbody\n', removed: 1 }, `chunks of ${size}`);
    // whoever it names: a field this long is no real one, and a reader's parser might find this host in it
    assert.deepEqual(stripped(theirs, size), { out: 'Subject: a\n\nbody\n', removed: 1 }, `chunks of ${size}`);
    assert.deepEqual(stripped(long, size), { out: long, removed: 0 }, `chunks of ${size}`);
  }
  // a last header line without its line end, too long
  assert.deepEqual(stripped(`Subject: a\nAuthentication-Results: x${'y'.repeat(70000)}`, 4096), {
    out: 'Subject: a\n',
    removed: 1,
  });
});

void test('the authserv-id is read without recursion or backtracking: 1 MiB of nested comments', () => {
  const depth = 512 * 1024; // 1 MiB of parentheses: a recursive reader would overflow its stack
  assert.equal(authservId(`${'('.repeat(depth)}${')'.repeat(depth)} mx.test; dkim=pass`), 'mx.test');
  assert.equal(authservId(`${'('.repeat(depth)}${')'.repeat(depth - 1)} mx.test; dkim=pass`), null);
  assert.equal(authservId(`(${'\\('.repeat(depth)}) "mx.test"`), 'mx.test');
  assert.equal(authservId(`${'(a'.repeat(depth / 2)}${')'.repeat(depth / 2)}other.test`), 'other.test');
  // and through the strip, a field just under the limit
  const nest = 30000;
  const field = (id: string): string => `Authentication-Results: ${'('.repeat(nest)}${')'.repeat(nest)} ${id}; a\n`;
  assert.deepEqual(stripped(`${field('mx.test')}\n`, 4096), { out: '\n', removed: 1 });
  assert.deepEqual(stripped(`${field('other.test')}\n`, 4096), { out: `${field('other.test')}\n`, removed: 0 });
});

void test('authservId: token, quoted-string, comments, nothing', () => {
  const cases: Array<[string, string | null]> = [
    [' mx.test; a', 'mx.test'],
    ['mx.test(c); a', 'mx.test'],
    ['\t(a(b)c)\t mx.test 1; a', 'mx.test'],
    [' "a \\"b\\" c"; a', 'a "b" c'],
    [' ""; a', ''],
    [' (unclosed', null],
    [' "unclosed', null],
    [' "ends in a quoted-pair\\', null],
    [' (c) ; a', null],
    ['', null],
    ['   ', null],
  ];
  for (const [value, id] of cases) assert.equal(authservId(value), id, JSON.stringify(value));
});

void test('Spool: past its memory limit the message goes to a file; read back whole, twice', async () => {
  const spool = new Spool(10);
  const parts = ['0123456', '789abcdef', 'ghij', '', 'klmnopqrstuvwxyz'];
  for (const p of parts) await spool.write(Buffer.from(p));
  const read = async (): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of spool.stream()) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };
  assert.equal(await read(), parts.join(''));
  assert.equal(await read(), parts.join(''));
  assert.equal(spool.size, parts.join('').length);
  await spool.close();
});
