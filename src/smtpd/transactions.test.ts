// The limit on mail transactions without a message (maxunsent=): MAIL counts as progress for maxnoop, so a client
// looping MAIL/RSET, MAIL/RCPT/RSET or MAIL with refused recipients held its connection slot for ever.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { harness, talk } from '../../test/support/smtpd.js';

const REMOTE = { TCPREMOTEIP: '192.0.2.9', TCPLOCALHOST: 'mx.local.test' };
const NO_MESSAGE =
  '421 4.7.0 too many mail transactions without a message accepted, closing the connection (#4.7.0)\r\n';
const repeat = (s: string, n: number): string => s.repeat(n);
const message = (rcpts: number): string =>
  `MAIL FROM:<a@b.test>\r\n${repeat('RCPT TO:<joe@local.test>\r\n', rcpts)}DATA\r\nSubject: s\r\n\r\nhello\r\n.\r\n`;

void test('maxunsent: 20 transactions in a row without a message accepted, then the next MAIL gets 421 4.7.0 (MAIL/RSET, MAIL/RCPT/RSET, refused RCPTs)', async () => {
  const h = await harness({ env: REMOTE, limits: { tarpitAfter: 100 } });
  try {
    const loops: ReadonlyArray<readonly [string, string]> = [
      ['MAIL/RSET', 'MAIL FROM:<a@b.test>\r\nRSET\r\n'],
      ['MAIL/RCPT/RSET', 'MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nRSET\r\n'],
      ['MAIL with a refused RCPT', 'MAIL FROM:<a@b.test>\r\nRCPT TO:<x@elsewhere.test>\r\nRSET\r\n'],
      ['MAIL/EHLO', 'MAIL FROM:<a@b.test>\r\nEHLO c\r\n'],
    ];
    for (const [name, loop] of loops) {
      // 20 are served; the 21st MAIL is refused and nothing after it is read
      const out = await talk(h.port, `EHLO c\r\n${repeat(loop, 20)}MAIL FROM:<a@b.test>\r\nNOOP\r\nQUIT\r\n`);
      assert.ok(out.endsWith(`\r\n${NO_MESSAGE}`), `${name}: ${out.slice(-300)}`);
      assert.equal(out.match(/^250 2\.1\.0 ok$/gm)?.length, 20, name);
    }
    assert.equal(h.queued.length, 0);
  } finally {
    await h.close();
  }
});

void test('maxunsent: a message accepted starts the count again; many messages of hundreds of recipients in one session are served', async () => {
  const h = await harness({ env: REMOTE });
  try {
    const unsent = repeat('MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@local.test>\r\nRSET\r\n', 19);
    const out = await talk(
      h.port,
      `EHLO c\r\n${unsent}${message(1)}${unsent}${repeat(message(300), 25)}${unsent}${message(2)}QUIT\r\n`,
    );
    assert.match(out, /\r\n221 mx\.local\.test\r\n$/);
    assert.equal(h.queued.length, 27);
    assert.equal(h.queued[1]?.recipients.length, 300);
  } finally {
    await h.close();
  }
  // the listener option sets it; 0 = no limit
  const two = await harness({ env: REMOTE, options: { maxunsent: '2' } });
  try {
    const out = await talk(two.port, `EHLO c\r\n${repeat('MAIL FROM:<a@b.test>\r\nRSET\r\n', 3)}QUIT\r\n`);
    assert.ok(out.endsWith(`250 2.0.0 flushed\r\n${NO_MESSAGE}`), out);
  } finally {
    await two.close();
  }
  const off = await harness({ env: REMOTE, options: { maxunsent: '0' } });
  try {
    const out = await talk(off.port, `EHLO c\r\n${repeat('MAIL FROM:<a@b.test>\r\nRSET\r\n', 100)}QUIT\r\n`);
    assert.match(out, /\r\n221 mx\.local\.test\r\n$/);
  } finally {
    await off.close();
  }
});
