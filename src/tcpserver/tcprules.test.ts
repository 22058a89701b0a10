// tcprules(1) source: parsing and the lookup order (the most specific key wins, the first rule for a key).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchTcpRules, parseTcpRules, parseTcpRulesKept } from './index.js';

void test('tcprules: parse and lookup order', () => {
  const rules = parseTcpRules(
    [
      '# comment',
      '',
      '127.:allow,RELAYCLIENT=""',
      '10.1.2.3:deny',
      '10.1.2.:allow,RELAYCLIENT="@gw.test",DATABYTES=5000',
      "192.0.2.4-6:allow,X='q,uoted'",
      'joe@10.9.9.9:allow,WHO=joe',
      '[::1]:allow,RELAYCLIENT=""',
      ':allow,=RELAYCLIENT',
      '10.1.2.3:allow',
      'garbage',
      '1.2.3.4:allow,BAD NAME=1',
    ].join('\n'),
  );
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

void test('parseTcpRulesKept: the same text is parsed once; another text is parsed anew', () => {
  const a = '127.:allow,RELAYCLIENT=""\n:deny\n';
  const first = parseTcpRulesKept(a);
  assert.equal(parseTcpRulesKept(`${a}`), first, 'the same text gives the rules parsed before');
  const b = '10.:allow\n';
  const other = parseTcpRulesKept(b);
  assert.notEqual(other, first);
  assert.equal(matchTcpRules(other, '10.1.2.3')?.action, 'allow');
  assert.equal(matchTcpRules(other, '127.0.0.1'), undefined, 'the new text is what is matched');
  assert.deepEqual(parseTcpRulesKept(a), parseTcpRules(a));
});
