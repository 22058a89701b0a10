// AuthResultsStrip (golden cases, every chunk split) and Spool (memory, then a file).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthResultsStrip, Spool } from './check.js';

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
