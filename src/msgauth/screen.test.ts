// The signature screen: what the inbound checks are shown of a hostile header (screen.ts has the measurements).
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { SCREEN_LIMITS, ScreenSignatures, screenHeader } from './screen.js';
import { checkInbound } from './verify.js';

const sig = (i: number, h = 'from:to:subject'): string =>
  `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=x${i}.example; s=s;\n\tl=${900 + i}; h=${h}; bh=AAAA; b=AAAA\n`;

void test('DKIM-Signatures past the fifth are taken out, the first five and every other field kept in order', () => {
  const header = `From: a@b.example\n${Array.from({ length: 8 }, (_, i) => sig(i)).join('')}Subject: x\n  folded\n`;
  const s = screenHeader(header);
  assert.equal(s.dropped, 3);
  assert.equal(
    s.header,
    `From: a@b.example\n${Array.from({ length: 5 }, (_, i) => sig(i)).join('')}Subject: x\n  folded\n`,
  );
});

void test('a signature naming more fields than the limit is taken out; one at the limit is kept', () => {
  const at = 'a:'.repeat(SCREEN_LIMITS.signedFields - 1) + 'from';
  const over = `${at}:b`;
  const ams = `ARC-Message-Signature: i=1; a=rsa-sha256; d=x.example; s=s;\n h=${over}; bh=AAAA; b=AAAA\n`;
  const s = screenHeader(`${sig(1, over)}${sig(2, at)}${ams}From: a@b.example\n`);
  assert.equal(s.dropped, 2);
  assert.equal(s.header, `${sig(2, at)}From: a@b.example\n`);
});

void test('a header of more fields than the limit has no signature shown at all', () => {
  const many = 'a: b\n'.repeat(SCREEN_LIMITS.fields);
  const arc = 'ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.example; s=s; b=AAAA\n';
  const s = screenHeader(`${sig(1)}${arc}${many}`);
  assert.deepEqual(s, { header: many, dropped: 2 });
  assert.equal(screenHeader(`${sig(1)}${'a: b\n'.repeat(SCREEN_LIMITS.fields - 1)}`).dropped, 0);
});

void test('the stream screens the header in any chunking and passes the body as it is', async () => {
  const header = `From: a@b.example\n${Array.from({ length: 7 }, (_, i) => sig(i)).join('')}`;
  const body = `\n${sig(99)}DKIM-Signature: in the body\n\nmore\n`;
  const want = screenHeader(header).header + body;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 40 }), async (cuts) => {
      const text = header + body;
      const parts: Buffer[] = [];
      for (let i = 0, k = 0; i < text.length; k++) {
        const n = cuts[k % cuts.length] ?? 1;
        parts.push(Buffer.from(text.slice(i, i + n), 'latin1'));
        i += n;
      }
      const screen = new ScreenSignatures();
      const out: Buffer[] = [];
      for await (const c of Readable.from(parts).pipe(screen)) out.push(c as Buffer);
      assert.equal(Buffer.concat(out).toString('latin1'), want);
      assert.equal(screen.dropped, 2);
    }),
    { numRuns: 200 },
  );
});

void test('a message without a header, or without a body, passes whole', async () => {
  for (const text of ['\nbody only\n', 'Subject: no body\n', '']) {
    const out: Buffer[] = [];
    for await (const c of Readable.from([Buffer.from(text)]).pipe(new ScreenSignatures())) out.push(c as Buffer);
    assert.equal(Buffer.concat(out).toString('latin1'), text);
  }
});

void test('checkInbound on 900 signatures with 900 body lengths: five are checked; on 3,000 (more fields than the limit), none', async () => {
  const nxdomain = (): Promise<never> => Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
  const check = async (n: number): Promise<string> => {
    const header = `From: a@b.example\nTo: b@local.test\n${Array.from({ length: n }, (_, i) => sig(i)).join('')}`;
    const msg = `${header}\n${'a line of the body\n'.repeat(1000)}`;
    const v = await checkInbound(
      Readable.from([Buffer.from(msg, 'latin1')]),
      { ip: '192.0.2.7', helo: 'client.test', sender: 'a@b.example', host: 'mx.local.test' },
      nxdomain,
    );
    return v.header;
  };
  const some = await check(900);
  assert.equal(some.match(/\bdkim=/g)?.length, SCREEN_LIMITS.dkimSignatures, some);
  assert.match(some, /header\.i=@x4\.example/);
  assert.doesNotMatch(some, /header\.i=@x5\.example/);
  assert.match(await check(3000), /dkim=none \(message not signed\)/);
});
