// DeliveryResult's code: the `(#x.y.z)` of qmail's report texts, parsed once (golden table).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { codeFromReport, reportCode, withCode, type DeliveryResult } from './index.js';

void test('reportCode: the first (#x.y.z) of a report, or none', () => {
  const table: Array<[string, string | undefined]> = [
    ['Sorry, no mailbox here by that name. (#5.1.1)\n', '5.1.1'],
    ["Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n", '4.4.1'],
    ['Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\nmore (#5.0.0)\n', '4.7.0'],
    ['did 1+0+0\n', undefined],
    ['127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 no such user\n', undefined],
    ['(#3.1.1) is not a class', undefined],
    ['(#5.01.007)', '5.1.7'],
  ];
  for (const [report, code] of table) assert.equal(reportCode(report), code, report);
  assert.equal(codeFromReport('did 1+0+0\n', '4.3.0'), '4.3.0');
});

void test('withCode: adds the code the report carries, keeps one already given, else leaves the result as it is', () => {
  const nosuch: DeliveryResult = { result: 'failure', report: 'Sorry, no mailbox here by that name. (#5.1.1)\n' };
  assert.deepEqual(withCode(nosuch), { ...nosuch, code: '5.1.1' });
  const given: DeliveryResult = { result: 'deferral', report: 'x (#4.4.1)\n', code: '4.2.2' };
  assert.equal(withCode(given), given);
  const ok: DeliveryResult = { result: 'success', report: 'did 1+0+0\n' };
  assert.equal(withCode(ok), ok);
});
