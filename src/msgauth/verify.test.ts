// checkInbound's edges: DNS that never answers is bounded; DNS errors are temperror, never a rejection; a hostile
// HELO or sender cannot write a result into quail's own Authentication-Results.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { checkInbound, reportable } from './verify.js';

const MSG = 'From: <a@forged.test>\nTo: <b@local.test>\nSubject: x\n\nbody\n';
const facts = { ip: '192.0.2.7', helo: 'client.test', sender: 'a@forged.test', host: 'mx.local.test' };

void test('a resolver that never answers: the checks give up after the deadline, the message is accepted with none', async () => {
  const v = await checkInbound(Readable.from([Buffer.from(MSG)]), facts, () => new Promise(() => undefined), 50);
  assert.equal(v.reject, undefined);
  assert.match(
    v.header,
    /^Authentication-Results: mx\.local\.test; none \(checks failed: no answer within 0\.05 s\)\n$/,
  );
  assert.deepEqual(v.results, { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', arc: 'temperror' });
});

void test('DNS errors (SERVFAIL) are temperror results and never reject', async () => {
  const fail = (): Promise<never> =>
    Promise.reject(Object.assign(new Error('queryTxt ESERVFAIL'), { code: 'ESERVFAIL' }));
  const v = await checkInbound(Readable.from([Buffer.from(MSG)]), facts, fail);
  assert.equal(v.reject, undefined);
  assert.match(v.header, /Authentication-Results: mx\.local\.test;\n/);
  assert.equal(v.results.spf, 'temperror');
});

/** The results of an Authentication-Results field as a reader that splits at ';' sees them. */
function naiveResults(header: string): string[] {
  const field = /^Authentication-Results:([^\n]*(?:\n[ \t][^\n]*)*)/m.exec(header)?.[1] ?? '';
  return field
    .replace(/\n/g, '')
    .split(';')
    .slice(1)
    .map((r) => r.trim().split(/[\s=]/)[0] ?? '')
    .filter((m) => m !== '');
}

void test('a HELO or sender holding ";", spaces or parentheses cannot write a result into the header', async () => {
  const nx = (): Promise<never> =>
    Promise.reject(Object.assign(new Error('queryTxt ENOTFOUND'), { code: 'ENOTFOUND' }));
  const hostile = [
    { helo: 'x; dkim=pass header.d=bank.example; dmarc=pass', sender: 'a@forged.test' },
    { helo: 'client.test', sender: '"a;dkim=pass (x"@forged.test' },
    { helo: 'a(b; dkim=pass', sender: '' },
  ];
  for (const f of hostile) {
    const v = await checkInbound(Readable.from([Buffer.from(MSG)]), { ...facts, ...f }, nx);
    assert.deepEqual(naiveResults(v.header), ['dkim', 'spf', 'dmarc'], v.header);
    // no word of the field starts a result (an SRS or BATV sender keeps its '=': `smtp.mailfrom="_a_dkim=pass…"`)
    assert.doesNotMatch(v.header, /(?:^|[\s;("])(?:dkim|dmarc)=pass/m, v.header);
    assert.doesNotMatch(v.header, /\([^)]*\(/, 'no comment opened inside a comment');
  }
  const v = await checkInbound(Readable.from([Buffer.from(MSG)]), { ...facts, ...hostile[0] }, nx);
  assert.match(v.header, /smtp\.helo=x__dkim_pass_header\.d_bank\.example__dmarc_pass\b/);
});

void test('reportable: host names, address literals and addresses unchanged; anything else made one plain word', () => {
  const cases: Array<[string, 'helo' | 'sender', string]> = [
    ['mx.example.com', 'helo', 'mx.example.com'],
    ['[192.0.2.1]', 'helo', '[192.0.2.1]'],
    ['[IPv6:2001:db8::1]', 'helo', '[IPv6:2001:db8::1]'],
    ['bücher.example', 'helo', 'bücher.example'],
    ['', 'helo', ''],
    ['x; dkim=pass', 'helo', 'x__dkim_pass'],
    ['[1.2.3.4]; a', 'helo', '_1.2.3.4___a'],
    ['a(b)\t"c"\\', 'helo', 'a_b___c__'],
    ['joe+tag@example.org', 'sender', 'joe+tag@example.org'],
    ["o'neil/x=y@example.org", 'sender', "o'neil/x=y@example.org"],
    ['joe@[192.0.2.1]', 'sender', 'joe@[192.0.2.1]'],
    ['', 'sender', ''],
    ['"a;dkim=pass (x"@forged.test', 'sender', '_a_dkim=pass__x_@forged.test'],
    ['"a@b c"@forged.test', 'sender', '_a_b_c_@forged.test'],
    ['x@a(b;c', 'sender', 'x@a_b_c'],
    ['a\u00a0b@x.test', 'sender', 'a_b@x.test'],
  ];
  for (const [text, kind, want] of cases) assert.equal(reportable(text, kind), want, JSON.stringify(text));
});
