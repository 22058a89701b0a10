// ETRN (RFC 1985): the parameter forms, every reply code, and the session rules, on a real listener on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, talk } from '../../test/support/smtpd.js';
import { etrnReply, parseEtrnNode, type EtrnAnswer, type EtrnNode, type EtrnService } from './etrn.js';

void test('parseEtrnNode: domain, @domain, #queue; anything else is a parameter syntax error', () => {
  assert.deepEqual(parseEtrnNode('Some.Example.COM'), {
    kind: 'domain',
    name: 'some.example.com',
    text: 'Some.Example.COM',
  });
  assert.deepEqual(parseEtrnNode('@example.com'), { kind: 'subdomains', name: 'example.com', text: '@example.com' });
  assert.deepEqual(parseEtrnNode('#dialup'), { kind: 'queue', name: 'dialup', text: '#dialup' });
  assert.deepEqual(parseEtrnNode('x.test.'), { kind: 'domain', name: 'x.test', text: 'x.test.' });
  for (const bad of ['', 'a b', '@', '#', '-x.test', 'x..test', 'a_b.test', `${'a'.repeat(64)}.test`, '#a b'])
    assert.equal(parseEtrnNode(bad), undefined, bad);
});

void test('etrnReply: the codes and texts of RFC 1985 section 5', () => {
  const rows: Array<[EtrnAnswer, string]> = [
    [{ kind: 'started' }, '250 OK, queuing for node x.test started'],
    [{ kind: 'none' }, '251 OK, no messages waiting for node x.test'],
    [{ kind: 'pending' }, '252 OK, pending messages for node x.test started'],
    [{ kind: 'pending', count: 3 }, '253 OK, 3 pending messages for node x.test started'],
    [{ kind: 'unable', why: 'busy' }, '458 Unable to queue messages for node x.test: busy'],
    [{ kind: 'refused', why: 'not held' }, '459 Node x.test not allowed: not held'],
  ];
  for (const [a, want] of rows) {
    const [code, , text] = etrnReply(a, 'x.test');
    assert.equal(`${code} ${text}`, want);
  }
});

/** A held-mail service that answers from a table and records what it was asked (the interface's other side). */
function service(answers: Record<string, EtrnAnswer>): EtrnService & { asked: Array<[EtrnNode, string, boolean]> } {
  const asked: Array<[EtrnNode, string, boolean]> = [];
  return {
    asked,
    request(node, client) {
      asked.push([node, client.ip, client.allowed]);
      return Promise.resolve(answers[node.text] ?? { kind: 'refused', why: 'not held here' });
    },
  };
}

void test('ETRN in a session: EHLO offers it, HELO first, not inside a transaction, replies as the service answers', async () => {
  const etrn = service({ 'held.test': { kind: 'pending', count: 2 }, 'empty.test': { kind: 'none' } });
  const h = await harness({ etrn, env: { TCPREMOTEIP: '127.0.0.1', QUAIL_ETRN: '1' } });
  try {
    const out = await talk(
      h.port,
      'ETRN held.test\r\nEHLO c.test\r\nETRN held.test\r\nETRN empty.test\r\nETRN other.test\r\nETRN a b\r\n' +
        'MAIL FROM:<a@c.test>\r\nETRN held.test\r\nRSET\r\nQUIT\r\n',
    );
    assert.match(out, /^250[- ]ETRN$/m);
    assert.match(out, /^503 send HELO or EHLO first/m); // before EHLO: no enhanced code (RFC 2034 3)
    assert.match(out, /^253 2\.0\.0 OK, 2 pending messages for node held\.test started$/m);
    assert.match(out, /^251 2\.0\.0 OK, no messages waiting for node empty\.test$/m);
    assert.match(out, /^459 4\.7\.1 Node other\.test not allowed: not held here$/m);
    assert.match(out, /^501 5\.5\.4 Syntax Error in Parameters/m);
    assert.match(out, /^503 5\.5\.1 ETRN is not allowed during a mail transaction/m);
    assert.deepEqual(
      etrn.asked.map(([n, ip, allowed]) => [n.name, ip, allowed]),
      [
        ['held.test', '127.0.0.1', true],
        ['empty.test', '127.0.0.1', true],
        ['other.test', '127.0.0.1', true],
      ],
    );
  } finally {
    await h.close();
  }
});

void test('without a held-mail service ETRN is 502 and EHLO does not offer it (qmail-smtpd)', async () => {
  const h = await harness();
  try {
    const out = await talk(h.port, 'EHLO c.test\r\nETRN held.test\r\nQUIT\r\n');
    assert.ok(!out.includes('ETRN'), out);
    assert.match(out, /^502 5\.5\.1 unimplemented/m);
  } finally {
    await h.close();
  }
});
