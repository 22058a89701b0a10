// DNS blocklists on a listener (rbl=, rblsmtpd's rules) through a real socket and a real DNS server on 127.0.0.1.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { promises as dnsPromises } from 'node:dns';
import { test } from 'node:test';
import { harness, type Harness } from '../../test/support/smtpd.js';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { Wire } from '../../test/support/hostile-wire.js';
import { reverseIp, type RblResolver } from './rbl.js';

const TXT = 'Blocked: see http://bl.test/?127.0.0.2';

/** A DNS server listing 127.0.0.2 and 127.0.0.6 in bl.test, 127.0.0.6 anti-listed in ok.test, 127.0.0.7 with a wild text. */
async function blocklistDns(): Promise<{ port: number; close: () => Promise<void> }> {
  const zone = new Map<string, DnsName>([
    ['2.0.0.127.bl.test', { txt: [TXT], a: ['127.0.0.2'] }],
    ['6.0.0.127.bl.test', { txt: ['listed too'] }],
    ['6.0.0.127.ok.test', { a: ['127.0.0.2'] }],
    ['7.0.0.127.bl.test', { txt: [`tab\there, bell\x07, ${'x'.repeat(300)}`] }],
    ['8.0.0.127.bl.test', { servfail: true }],
  ]);
  return startDns(zone);
}

const resolverAt =
  (port: number, timeout = 500): (() => RblResolver) =>
  () => {
    const r = new dnsPromises.Resolver({ timeout, tries: 1 });
    r.setServers([`127.0.0.1:${port}`]);
    return r;
  };

/** One client from `from`: the replies to each line of `lines`, the greeting first. */
async function session(h: Harness, from: string, lines: readonly string[]): Promise<string[]> {
  const w = await Wire.connect(h.port, { localAddress: from });
  try {
    const out = [await w.reply()];
    for (const l of lines) {
      w.send(`${l}\r\n`);
      out.push(await w.reply());
    }
    return out;
  } finally {
    w.destroy();
  }
}

const MESSAGE = ['EHLO client.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<joe@local.test>', 'DATA', 'hi\r\n.', 'QUIT'];

void test('reverseIp: IPv4 reversed, IPv6 as 32 nibbles, a mapped IPv4 as IPv4, anything else undefined', () => {
  assert.equal(reverseIp('192.0.2.9'), '9.2.0.192.');
  assert.equal(reverseIp('::ffff:192.0.2.9'), '9.2.0.192.');
  assert.equal(reverseIp('2001:db8::1'), `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.`);
  assert.equal(reverseIp('unknown'), undefined);
});

void test('rbl=: a listed client gets the list text with 451 on every command but HELO/EHLO/QUIT; others are served', async () => {
  const dns = await blocklistDns();
  const logs: Array<[string, Readonly<Record<string, unknown>>]> = [];
  const h = await harness({
    options: { rbl: 'bl.test' },
    dns: resolverAt(dns.port),
    log: (e, f) => logs.push([e, f]),
  });
  try {
    const listed = await session(h, '127.0.0.2', [
      'EHLO client.test',
      'MAIL FROM:<a@b.test>',
      'RCPT TO:<joe@local.test>',
      'DATA',
      'NOOP',
      'HELO x',
      'QUIT',
    ]);
    assert.match(listed[0] ?? '', /^220 mx\.local\.test\r\n$/);
    assert.equal(listed[1], '250 mx.local.test\r\n');
    for (const r of listed.slice(2, 6)) assert.equal(r, `451 ${TXT}\r\n`);
    assert.equal(listed[6], '250 mx.local.test\r\n');
    assert.equal(listed[7], '221 mx.local.test\r\n');
    assert.equal(h.queued.length, 0);
    assert.ok(logs.some(([e, f]) => e === 'smtp.refused' && f['why'] === 'rbl' && f['ip'] === '127.0.0.2'));

    const clean = await session(h, '127.0.0.3', MESSAGE);
    assert.match(clean[0] ?? '', /^220 mx\.local\.test ESMTP\r\n$/);
    assert.match(clean[5] ?? '', /^250 2\.0\.0 ok /);
    assert.equal(h.queued.length, 1);

    // a list answering SERVFAIL is a temporary failure: rblsmtpd's -C serves the client
    const broken = await session(h, '127.0.0.8', MESSAGE);
    assert.match(broken[5] ?? '', /^250 2\.0\.0 ok /);
  } finally {
    await h.close();
    await dns.close();
  }
});

void test('rblbounce=on is 553 (-b); rbltimeout=0 says the refusal instead of a greeting and closes; text cut at 200, controls as ?', async () => {
  const dns = await blocklistDns();
  const bounce = await harness({ options: { rbl: 'bl.test', rblbounce: 'on' }, dns: resolverAt(dns.port) });
  const at0 = await harness({ options: { rbl: 'bl.test', rbltimeout: '0' }, dns: resolverAt(dns.port) });
  try {
    const r = await session(bounce, '127.0.0.2', ['MAIL FROM:<a@b.test>']);
    assert.equal(r[1], `553 ${TXT}\r\n`);
    const wild = await session(bounce, '127.0.0.7', ['MAIL FROM:<a@b.test>']);
    assert.equal(wild[1], `553 tab?here, bell?, ${'x'.repeat(200 - 'tab?here, bell?, '.length)}\r\n`);

    const w = await Wire.connect(at0.port, { localAddress: '127.0.0.2' });
    assert.equal(await w.reply(), `451 ${TXT}\r\n`);
    assert.ok(await w.closes(), 'closed after the refusal');
    w.destroy();
  } finally {
    await bounce.close();
    await at0.close();
    await dns.close();
  }
});

void test('rblallow= anti-lists (an A record): tried in line order with rbl=, as rblsmtpd -a/-r', async () => {
  const dns = await blocklistDns();
  const allowFirst = await harness({ options: { rbl: '+ok.test bl.test' }, dns: resolverAt(dns.port) });
  const blockFirst = await harness({ options: { rbl: 'bl.test +ok.test' }, dns: resolverAt(dns.port) });
  try {
    assert.match((await session(allowFirst, '127.0.0.6', MESSAGE))[5] ?? '', /^250 2\.0\.0 ok /);
    assert.equal((await session(blockFirst, '127.0.0.6', ['MAIL FROM:<a@b.test>']))[1], '451 listed too\r\n');
  } finally {
    await allowFirst.close();
    await blockFirst.close();
    await dns.close();
  }
});

void test('RBLSMTPD from tcp.smtp, as rblsmtpd reads it: empty = exempt, text = 451 text, -text = 553 text', async () => {
  const dns = await blocklistDns();
  const h = await harness({
    options: { rbl: 'bl.test' },
    dns: resolverAt(dns.port),
    control: {
      'tcp.smtp':
        '127.0.0.2:allow,RBLSMTPD=""\n127.0.0.4:allow,RBLSMTPD="-go away for good"\n127.0.0.5:allow,RBLSMTPD="come back later"\n:allow\n',
    },
  });
  try {
    assert.match((await session(h, '127.0.0.2', MESSAGE))[5] ?? '', /^250 2\.0\.0 ok /, 'listed but exempt');
    assert.equal((await session(h, '127.0.0.4', ['RCPT TO:<joe@local.test>']))[1], '553 go away for good\r\n');
    assert.equal((await session(h, '127.0.0.5', ['MAIL FROM:<a@b.test>']))[1], '451 come back later\r\n');
    assert.equal(h.queued.length, 1);
  } finally {
    await h.close();
    await dns.close();
  }
});

void test('a DNS server that never answers: past rbldeadline= the client is served (-C) or refused 451 (rblfail=closed)', async () => {
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  const port = silent.address().port;
  const logs: Array<[string, Readonly<Record<string, unknown>>]> = [];
  // the resolver itself would wait 60 s: only the listener's deadline can end the wait
  const open = await harness({
    options: { rbl: 'bl.test', rbldeadline: '1' },
    dns: resolverAt(port, 60_000),
    log: (e, f) => logs.push([e, f]),
  });
  const closed = await harness({
    options: { rbl: 'bl.test', rbldeadline: '1', rblfail: 'closed' },
    dns: resolverAt(port, 60_000),
  });
  try {
    const served = await session(open, '127.0.0.2', MESSAGE);
    assert.match(served[0] ?? '', /^220 .* ESMTP\r\n$/);
    assert.match(served[5] ?? '', /^250 2\.0\.0 ok /);
    assert.ok(logs.some(([e, f]) => e === 'smtp.rbl' && /no answer within 1 s/.test(String(f['why']))));
    const refused = await session(closed, '127.0.0.2', ['MAIL FROM:<a@b.test>']);
    assert.equal(refused[1], '451 temporary RBL lookup error\r\n');
  } finally {
    await open.close();
    await closed.close();
    silent.close();
  }
});

void test('the limited conversation ends after rbltimeout= seconds even if the client stays', async () => {
  const dns = await blocklistDns();
  const h = await harness({ options: { rbl: 'bl.test', rbltimeout: '1' }, dns: resolverAt(dns.port) });
  try {
    const w = await Wire.connect(h.port, { localAddress: '127.0.0.2' });
    assert.equal(await w.reply(), '220 mx.local.test\r\n');
    assert.ok(await w.closes(30_000), 'dropped by the server');
    w.destroy();
  } finally {
    await h.close();
    await dns.close();
  }
});
