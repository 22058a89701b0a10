// The attack battery, huge input (src/smtpd/README.md, "The attack battery"): a 1 GB command line streamed without
// tier: system (needs quail start, swaks, python3, curl)
// a line end, 100 MB lines on POP3 and ODMR, a 100 MB DATA over databytes, header bombs (100,000 header lines, one
// 50 MB folded header), 1,000,000 pipelined RCPTs, and clients that pipeline without ever reading a reply on every
// listener. Memory is bounded (the child's VmRSS stays under 300 MiB, a generous bound), every reply is a clear
// code, and afterwards every listener serves a real client with the same child processes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Attack, BOX, MAXRCPT, PASSWORD, raw, stream, type Child, type Kind } from '../../test/support/attack.js';
import { assertSmtpLines, freshLoopback, Wire } from '../../test/support/hostile-wire.js';
import { waitFor } from '../../test/support/start.js';

/** MiB of resident memory a child may reach under any one attack (idle it holds about 100). */
const BOUND = 300;

let a: Attack;
before(async () => {
  a = await Attack.start('hostile-huge');
});
after(async () => {
  await a.stop();
});

/** `n` bytes of `fill` written to the connection 1 MiB at a time (each write waits for the kernel). */
async function pour(w: Wire, n: number, fill = 0x78): Promise<void> {
  const mb = Buffer.alloc(1 << 20, fill);
  for (let left = n; left > 0; left -= mb.length)
    assert.ok(await w.write(left >= mb.length ? mb : mb.subarray(0, left)), 'the server closed in the middle');
}

/** An SMTP session on the smtp listener after EHLO (and MAIL and RCPT when `rcpt`). */
async function smtp(rcpt = false): Promise<Wire> {
  const w = await Wire.connect(a.ports.smtp, { localAddress: freshLoopback() });
  assert.equal(await w.code(), 220);
  w.send('EHLO client.test\r\n');
  assert.equal(await w.code(), 250);
  if (rcpt) {
    w.send(`MAIL FROM:<huge@client.test>\r\nRCPT TO:<${BOX}>\r\n`);
    assert.deepEqual([await w.code(), await w.code()], [250, 250]);
  }
  return w;
}

async function quit(w: Wire, what: string): Promise<void> {
  w.send('QUIT\r\n');
  assert.match(await w.reply(30_000), /^221 /, `${what}: QUIT after it: ${w.received.slice(-300)}`);
  assertSmtpLines(w.received, what);
  w.destroy();
}

void test('a 1 GB SMTP command line without a line end: read and dropped in bounded memory, then 500 5.5.2, the session goes on', async () => {
  const w = await smtp();
  const peak = await a.peakRss('smtpd', async () => {
    await w.write('NOOP ');
    await pour(w, 1 << 30);
  });
  assert.ok(peak < BOUND, `the SMTP child reached ${peak} MiB while a 1 GB line arrived`);
  w.send('\r\n');
  assert.match(await w.reply(30_000), /^500 5\.5\.2 line too long/);
  await quit(w, '1 GB line');
  await a.serving('a 1 GB command line');
});

void test('100 MB lines on POP3 and ODMR: dropped in bounded memory, refused, the session goes on', async () => {
  for (const [kind, child, greeting, refused, bye] of [
    ['pop3', 'pop3d', /^\+OK /, /^-ERR /, /^\+OK/],
    ['odmr', 'odmrd', /^220 /, /^500 /, /^221 /],
  ] as const) {
    const w = await Wire.connect(a.ports[kind], { localAddress: freshLoopback() });
    assert.match(await w.line(), greeting);
    const peak = await a.peakRss(child, async () => {
      await w.write('NOOP ');
      await pour(w, 100 << 20);
    });
    assert.ok(peak < BOUND, `the ${kind} child reached ${peak} MiB while a 100 MB line arrived`);
    w.send('\r\nQUIT\r\n');
    assert.match(await w.line(30_000), refused, `${kind}: the long line`);
    assert.match(await w.line(), bye, `${kind}: QUIT after the long line`);
    w.destroy();
  }
  await a.serving('100 MB POP3 and ODMR lines');
});

void test('a 100 MB DATA over databytes (64 MiB): 552 5.3.4 after the dot, bounded memory, nothing queued', async () => {
  const w = await smtp(true);
  w.send('DATA\r\n');
  assert.equal(await w.code(), 354);
  const line = Buffer.from(`${'y'.repeat(998)}\r\n`);
  const peak = await a.peakRss('smtpd', async () => {
    await w.write('Subject: over databytes\r\n\r\n');
    for (let i = 0; i < 100; i++) await w.write(Buffer.concat(Array.from({ length: 1000 }, () => line)));
    await w.write('.\r\n');
  });
  assert.ok(peak < BOUND, `the SMTP child reached ${peak} MiB during a 100 MB DATA`);
  assert.match(await w.reply(30_000), /^552 5\.3\.4 .*databytes/);
  await quit(w, '100 MB DATA');
  await a.serving('a 100 MB DATA');
});

void test('header bombs: 100,000 header lines and one 50 MB folded header are refused 552 5.3.4 in bounded memory; 5,000 lines pass', async () => {
  const cases: ReadonlyArray<readonly [string, () => Buffer[], RegExp]> = [
    [
      '100,000 short header lines',
      () => Array.from({ length: 100 }, (_, i) => Buffer.from(hdrs(i * 1000, 1000))),
      /^552 5\.3\.4 .*header section/,
    ],
    [
      'one 50 MB folded header',
      () => [
        Buffer.from('X-Bomb: start\r\n'),
        ...Array.from({ length: 50 }, () => Buffer.from(` ${'f'.repeat(1022)}\r\n`.repeat(1024))),
      ],
      /^552 5\.3\.4 .*header section/,
    ],
    ['5,000 short header lines', () => [Buffer.from(hdrs(0, 5000))], /^250 /],
  ];
  for (const [what, parts, want] of cases) {
    const w = await smtp(true);
    w.send('DATA\r\n');
    assert.equal(await w.code(), 354);
    const peak = await a.peakRss('smtpd', async () => {
      for (const p of parts()) await w.write(p);
      await w.write('\r\nthe body\r\n.\r\n');
    });
    assert.ok(peak < BOUND, `${what}: the SMTP child reached ${peak} MiB`);
    assert.match(await w.reply(60_000), want, what);
    await quit(w, what);
  }
  await a.serving('header bombs');
});

function hdrs(from: number, n: number): string {
  let s = '';
  for (let i = from; i < from + n; i++) s += `X-H${i}: v\r\n`;
  return s;
}

void test('1,000,000 pipelined RCPTs: maxrcpt answers 452, the session ends with 421, memory stays bounded', async () => {
  const w = await smtp();
  w.send('MAIL FROM:<rcpt-flood@client.test>\r\n');
  assert.equal(await w.code(), 250);
  const rcpt = Buffer.from(`RCPT TO:<${BOX}>\r\n`);
  const batch = Buffer.concat(Array.from({ length: 10_000 }, () => rcpt));
  const peak = await a.peakRss('smtpd', async () => {
    for (let i = 0; i < 100 && (await w.write(batch)); i++);
  });
  w.end(); // the server reads and drops the rest of the flood until this FIN
  assert.ok(peak < BOUND, `the SMTP child reached ${peak} MiB under 1,000,000 RCPTs`);
  const codes: number[] = [];
  for (let c = await w.code(); c !== 0; c = await w.code()) codes.push(c);
  assert.equal(codes.filter((c) => c === 250).length, MAXRCPT, `accepted recipients: ${codes.join(' ')}`);
  assert.ok(codes.includes(452), `no 452 past maxrcpt: ${codes.join(' ')}`);
  assert.equal(codes.at(-1), 421, `the flood did not end in 421: ${codes.join(' ')}`);
  assert.ok(w.closed || (await w.closes()), 'the session stays open after 421');
  assertSmtpLines(w.received, '1,000,000 RCPTs');
  w.destroy();
  await a.serving('1,000,000 RCPTs');
});

/** What a client pipelines without ever reading, per listener, and the end the server logs when it drops it. */
const NOT_READING: ReadonlyArray<readonly [Kind, Child, string, string, RegExp | 'closed']> = [
  ['smtp', 'smtpd', '', 'EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n', /smtp\.close .*reason=not-reading/],
  ['odmr', 'odmrd', '', 'EHLO client.test\r\n', /odmr\.session .*end=not-reading/],
  // logged in, so that the end of the session is logged (pop3.session)
  ['pop3', 'pop3d', `USER ${BOX}\r\nPASS ${PASSWORD}\r\n`, 'UIDL\r\nCAPA\r\n', /pop3\.session .*end=not-reading/],
  // no browser pipelines: past a few unanswered requests the connection is closed (src/web/server.ts)
  ['admin', 'webd', '', 'GET /login HTTP/1.1\r\nHost: attack.test\r\n\r\n', 'closed'],
];

void test('clients that pipeline and never read a reply, on every listener: the server stops reading, memory stays bounded, smtp, odmr and pop3 drop them after their idle time', async () => {
  for (const [kind, child, first, unit, dropped] of NOT_READING) {
    const s = await raw(a.ports[kind]);
    s.pause(); // never read: the server's replies fill our receive buffer, then its send buffer
    if (first !== '') s.write(first);
    let sent = 0;
    const peak = await a.peakRss(child, async () => {
      sent = await stream(s, Buffer.from(unit), 64 << 20);
    });
    assert.ok(peak < BOUND, `${kind}: the ${child} child reached ${peak} MiB (${sent >> 20} MB sent, no reply read)`);
    // still not reading: the server must give up on its own (reading now would let it go on, then idle out)
    if (dropped === 'closed')
      await waitFor(
        () => s.destroyed || s.readableEnded,
        10_000,
        () => `${kind}: not closed`,
      );
    else
      await waitFor(
        () => dropped.test(a.q.log()),
        60_000,
        () => `${kind}: not dropped:\n${a.q.log().slice(-2000)}`,
      );
    s.destroy();
  }
  await a.serving('clients that never read');
});
