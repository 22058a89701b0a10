// checkInbound's edges: DNS that never answers is bounded; DNS errors are temperror, never a rejection.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { checkInbound } from './verify.js';

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
