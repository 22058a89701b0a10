// Inbound SPF/DKIM/DMARC on an smtp listener: Authentication-Results for pass and fail, 550 on p=reject, spoofs removed.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { dkimSign } from 'mailauth';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { harness, talk, type Harness } from '../../test/support/smtpd.js';
import { InboundLink } from './msgauth-link.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const KEY_RECORD = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;

/** The tests' DNS: good.test signs and sends from 127.0.0.1; bad.test sends from 192.0.2.1 only; both p=reject. */
const ZONE = new Map<string, DnsName>([
  ['sel._domainkey.good.test', { txt: [KEY_RECORD] }],
  ['good.test', { txt: ['v=spf1 ip4:127.0.0.0/8 -all'] }],
  ['_dmarc.good.test', { txt: ['v=DMARC1; p=reject'] }],
  ['bad.test', { txt: ['v=spf1 ip4:192.0.2.1 -all'] }],
  ['_dmarc.bad.test', { txt: ['v=DMARC1; p=reject'] }],
  ['relaxed.test', { txt: ['v=spf1 ip4:192.0.2.1 -all'] }],
  ['_dmarc.relaxed.test', { txt: ['v=DMARC1; p=none'] }],
]);

function message(from: string, extraHeader = '', body = 'hello\r\n'): string {
  return (
    `${extraHeader}From: <${from}>\r\nTo: <joe@local.test>\r\nSubject: check me\r\n` +
    `Date: Fri, 4 Dec 2026 12:00:00 +0000\r\nMessage-ID: <${Math.random()}@x>\r\n\r\n${body}`
  );
}

async function signed(from: string, body?: string): Promise<string> {
  const m = message(from, '', body);
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const sig = { signingDomain: 'good.test', selector: 'sel', privateKey: pem, algorithm: 'rsa-sha256' };
  // signTime fixed: without it mailauth reads the clock twice for t=, and a second boundary between the reads
  // makes a bad signature (src/msgauth/sign.test.ts)
  const r = await dkimSign(Buffer.from(m), { ...sig, signTime: new Date(), signatureData: [sig] });
  return r.signatures + m;
}

/** One SMTP transaction from 127.0.0.1; the dialogue's text. */
function send(h: Harness, sender: string, data: string): Promise<string> {
  const dotted = data.replace(/^\./gm, '..');
  return talk(
    h.port,
    `EHLO client.good.test\r\nMAIL FROM:<${sender}>\r\nRCPT TO:<joe@local.test>\r\nDATA\r\n${dotted}.\r\nQUIT\r\n`,
  );
}

async function world(policy: string, tcpsmtp?: string): Promise<{ h: Harness; close: () => Promise<void> }> {
  const dns = await startDns(ZONE);
  const holder: { link?: InboundLink } = {};
  const h = await harness({
    control: {
      me: 'mx.local.test\n',
      rcpthosts: 'local.test\n',
      dnsservers: `127.0.0.1:${dns.port}\n`,
      ...(tcpsmtp !== undefined ? { 'tcp.smtp': tcpsmtp } : {}),
    },
    options: { authcheck: policy },
    checker: { check: (m, f) => (holder.link as InboundLink).check(m, f) },
  });
  holder.link = new InboundLink(h.root);
  return {
    h,
    close: async () => {
      await h.close();
      await dns.close();
    },
  };
}

void test('authcheck=header: a signed message from an SPF-allowed address passes SPF, DKIM and DMARC; the header names this host', async () => {
  const w = await world('header');
  try {
    // over 1 MiB: the message is held in a temporary file while it is checked
    const big = `${'x'.repeat(998)}\r\n`.repeat(1200);
    const out = await send(w.h, 'alice@good.test', await signed('alice@good.test', big));
    assert.match(out, /250 2\.0\.0 ok \d+ qp test-1/);
    const data = w.h.queued[0]?.data ?? '';
    assert.match(data, /^Received: [^\n]*\n[^\n]*\nReceived-SPF: pass /);
    assert.match(data, /\nAuthentication-Results: mx\.local\.test;\n\s+dkim=pass [^\n]*header\.i=@good\.test/);
    assert.match(data, /\n\s+spf=pass [^\n]*smtp\.mailfrom=alice@good\.test/);
    assert.match(data, /\n\s+dmarc=pass [^\n]*header\.from=good\.test/);
    assert.equal(data.length > 1200 * 999, true, 'the whole body was queued');
    assert.ok(data.endsWith(big.replaceAll('\r\n', '\n')));
  } finally {
    await w.close();
  }
});

void test('authcheck=header: a forged message fails SPF and DMARC, is accepted with the results; p=none is fail too, never refused', async () => {
  const w = await world('header');
  try {
    const out = await send(w.h, 'ceo@bad.test', message('ceo@bad.test'));
    assert.match(out, /250 2\.0\.0 ok/);
    const data = w.h.queued[0]?.data ?? '';
    assert.match(data, /\n\s+spf=fail /);
    assert.match(data, /\n\s+dmarc=fail [^\n]*p=REJECT/i);
    assert.match(data, /dkim=none/);
  } finally {
    await w.close();
  }
});

void test('authcheck=reject: DMARC p=reject failure → 550 5.7.1, nothing queued; p=none failure and passing mail accepted', async () => {
  const w = await world('reject');
  try {
    const out = await send(w.h, 'ceo@bad.test', message('ceo@bad.test'));
    assert.match(out, /550 5\.7\.1 sorry, the DMARC policy of bad\.test says to reject this message/);
    assert.equal(w.h.queued.length, 0);
    assert.match(await send(w.h, 'x@relaxed.test', message('x@relaxed.test')), /250 2\.0\.0 ok/);
    assert.match(await send(w.h, 'alice@good.test', await signed('alice@good.test')), /250 2\.0\.0 ok/);
    assert.equal(w.h.queued.length, 2);
    assert.match(w.h.queued[0]?.data ?? '', /dmarc=fail/);
  } finally {
    await w.close();
  }
});

void test('Authentication-Results claiming this host are removed (folded ones too); those of other hosts stay; authcheck=off adds none', async () => {
  const spoof =
    'Authentication-Results: MX.local.test;\r\n dkim=pass header.d=bad.test;\r\n dmarc=pass\r\n' +
    'Authentication-Results: mx.local.test (comment); spf=pass\r\n' +
    'Authentication-Results: other.example; spf=pass smtp.mailfrom=ceo@bad.test\r\n';
  const w = await world('header');
  try {
    assert.match(await send(w.h, 'ceo@bad.test', message('ceo@bad.test', spoof)), /250 2\.0\.0 ok/);
    const data = w.h.queued[0]?.data ?? '';
    const ours = data.match(/^Authentication-Results: mx\.local\.test/gim) ?? [];
    assert.equal(ours.length, 1, data);
    assert.doesNotMatch(data, /dkim=pass header\.d=bad\.test/);
    assert.doesNotMatch(data, /\(comment\)/);
    assert.match(data, /\nAuthentication-Results: other\.example; spf=pass/);
  } finally {
    await w.close();
  }
  const off = await world('off');
  try {
    assert.match(await send(off.h, 'ceo@bad.test', message('ceo@bad.test', spoof)), /250 2\.0\.0 ok/);
    const data = off.h.queued[0]?.data ?? '';
    assert.doesNotMatch(data, /Received-SPF/);
    assert.equal((data.match(/^Authentication-Results: mx\.local\.test/gim) ?? []).length, 2, 'off: untouched');
  } finally {
    await off.close();
  }
});

void test('forged Authentication-Results for this host are removed however they are written: nested, folded and escaped comments, a quoted authserv-id, a field over 64 KiB', async () => {
  const long = ' (zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz)\r\n'.repeat(1100);
  const spoof =
    'Authentication-Results: (a (b) c) mx.local.test; dkim=pass header.d=bad.test\r\n' +
    'Authentication-Results: (x\r\n y) mx.local.test; dkim=pass header.d=bad.test\r\n' +
    'Authentication-Results: (a \\) b) mx.local.test; dkim=pass header.d=bad.test\r\n' +
    'Authentication-Results: "mx.local.test"; dkim=pass header.d=bad.test\r\n' +
    'Authentication-Results: "MX.Local.Test."; dkim=pass header.d=bad.test\r\n' +
    `Authentication-Results: mx.local.test; dkim=pass header.d=bad.test\r\n${long}` +
    'Authentication-Results: (mx.local.test) other.example; spf=pass\r\n';
  const w = await world('header');
  try {
    assert.match(await send(w.h, 'ceo@bad.test', message('ceo@bad.test', spoof)), /250 2\.0\.0 ok/);
    const data = w.h.queued[0]?.data ?? '';
    assert.equal((data.match(/^Authentication-Results:/gim) ?? []).length, 2, data.slice(0, 2000));
    assert.match(data, /\nAuthentication-Results: mx\.local\.test;\n/);
    assert.match(data, /\nAuthentication-Results: \(mx\.local\.test\) other\.example; spf=pass\n/);
    assert.doesNotMatch(data, /dkim=pass header\.d=bad\.test|zzzz/);
    assert.ok(data.length < 10_000, 'the long field went whole');
  } finally {
    await w.close();
  }
});

void test("a hostile HELO or sender cannot write a result into this host's Authentication-Results", async () => {
  const w = await world('header');
  try {
    const out = await talk(
      w.h.port,
      'EHLO x; dkim=pass header.d=bad.test; dmarc=pass\r\nMAIL FROM:<"a;dkim=pass (x"@bad.test>\r\n' +
        `RCPT TO:<joe@local.test>\r\nDATA\r\n${message('ceo@bad.test')}.\r\nQUIT\r\n`,
    );
    assert.match(out, /250 2\.0\.0 ok/);
    const data = w.h.queued[0]?.data ?? '';
    const field = /^Authentication-Results:([^\n]*(?:\n[ \t][^\n]*)*)/m.exec(data)?.[1] ?? '';
    // as a reader that splits at ';' sees it: the authserv-id, then one result per method, none of them forged
    const parts = field
      .replace(/\n/g, '')
      .split(';')
      .map((p) => p.trim().split(/[\s=]/)[0]);
    assert.deepEqual(parts, ['mx.local.test', 'dkim', 'spf', 'dmarc'], field);
    assert.match(field, /smtp\.helo=x__dkim_pass_header\.d_bad\.test__dmarc_pass;/);
    assert.match(field, /smtp\.mailfrom="a_dkim=pass__x@bad\.test"/);
    assert.match(field, /\bspf=fail /);
    assert.match(field, /\bdmarc=fail /);
  } finally {
    await w.close();
  }
});

void test('a client that may relay is ours: not checked, not refused under authcheck=reject (its mail is signed on the way out)', async () => {
  const w = await world('reject', '127.0.0.1:allow,RELAYCLIENT=""\n');
  try {
    assert.match(await send(w.h, 'app@bad.test', message('app@bad.test')), /250 2\.0\.0 ok/);
    const data = w.h.queued[0]?.data ?? '';
    assert.doesNotMatch(data, /Authentication-Results|Received-SPF/);
    assert.equal(w.h.queued[0]?.meta['relay'], '1');
  } finally {
    await w.close();
  }
});
