// DKIM signing: keys on disk, the signing decision, and signatures that mailauth's verifier accepts.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock, test } from 'node:test';
import { dkimVerify } from 'mailauth';
import { activeSelector, generateKey, listSelectors, newSelector, publicRecord, readKey } from './keys.js';
import { DkimSigner, fromDomain, signedBy, signingDomains } from './sign.js';

const MESSAGE =
  'Received: from x by y; Fri, 4 Dec 2026 12:00:00 +0000\n' +
  'From: Joe <joe@example.com>\nTo: ann@elsewhere.example\nSubject: hello\nDate: Fri, 4 Dec 2026 12:00:00 +0000\n' +
  'Message-ID: <1@example.com>\n\nline one\n\n\nline  two with  spaces \n';

function setup(): { root: string; path: string } {
  const root = mkdtempSync(join(tmpdir(), 'quail-dkim-'));
  const path = join(root, 'message');
  writeFileSync(path, MESSAGE);
  return { root, path };
}

/** A resolver that knows the one TXT record `name` → `value`. */
const resolverFor =
  (name: string, value: string) =>
  (domain: string, type: string): Promise<string[][]> => {
    if (type === 'TXT' && domain === name) return Promise.resolve([[value]]);
    return Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }));
  };

for (const algorithm of ['rsa-2048', 'ed25519'] as const) {
  void test(`a message signed with a ${algorithm} key verifies against the record keygen prints`, async () => {
    const { root, path } = setup();
    const {
      record,
      path: keyFile,
      active,
    } = generateKey({
      root,
      domain: 'Example.COM',
      selector: 's1',
      algorithm,
      activate: false,
    });
    assert.equal(active, true, 'the first key of a domain is the active one');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.equal(keyFile, join(root, 'control', 'dkim', 'example.com', 's1.key'));
    const out = await new DkimSigner(root).outcome(
      path,
      { origin: 'smtp', auth: 'joe@example.com' },
      'joe@example.com',
    );
    assert.equal(out.kind, 'signed');
    if (out.kind !== 'signed') return;
    assert.match(out.header, /^DKIM-Signature: /);
    assert.doesNotMatch(out.header, /\r/, 'LF line ends, as the queue keeps them');
    assert.match(out.header, algorithm === 'ed25519' ? /a=ed25519-sha256/ : /a=rsa-sha256/);
    // as the receiver sees it: the signature on top, CRLF line ends
    const wire = Buffer.from((out.header + MESSAGE).replaceAll('\n', '\r\n'));
    const v = await dkimVerify(wire, { resolver: resolverFor('s1._domainkey.example.com', record) });
    assert.equal(v.results.length, 1);
    assert.equal(v.results[0]?.status.result, 'pass', v.results[0]?.status.comment);
    assert.equal(v.results[0]?.signingDomain, 'example.com');
    // the same message changed after signing fails
    const bad = Buffer.from(wire.toString().replace('line one', 'line 1'));
    const vb = await dkimVerify(bad, { resolver: resolverFor('s1._domainkey.example.com', record) });
    assert.equal(vb.results[0]?.status.result, 'neutral');
  });
}

void test('a signature made while the clock crosses a second still verifies (the signer fixes t= once)', async () => {
  // mailauth's header formatter fills a missing t= from Date.now(), once for the text it signs and again for the
  // header it writes; without a fixed signTime a second boundary between the two gives a bad signature.
  const { root, path } = setup();
  const { record } = generateKey({
    root,
    domain: 'example.com',
    selector: 's1',
    algorithm: 'rsa-2048',
    activate: false,
  });
  let now = Date.now();
  const ticking = mock.method(Date, 'now', () => (now += 1000));
  let out;
  try {
    out = await new DkimSigner(root).outcome(path, { origin: 'smtp', auth: 'joe@example.com' }, 'joe@example.com');
  } finally {
    ticking.mock.restore();
  }
  assert.equal(out.kind, 'signed');
  if (out.kind !== 'signed') return;
  const wire = Buffer.from((out.header + MESSAGE).replaceAll('\n', '\r\n'));
  const v = await dkimVerify(wire, { resolver: resolverFor('s1._domainkey.example.com', record) });
  assert.equal(v.results[0]?.status.result, 'pass', v.results[0]?.status.comment);
});

void test('the signing decision: AUTH login domain, relay clients and local injection by sender then From; never forwards or bounces', () => {
  const from = 'other.example';
  assert.deepEqual(signingDomains({ origin: 'smtp', auth: 'joe@Example.com' }, 'x@else.example', from), [
    'example.com',
  ]);
  assert.deepEqual(signingDomains({ origin: 'smtp', auth: 'joe%example.com' }, '', from), ['example.com']);
  assert.deepEqual(signingDomains({ origin: 'smtp', relay: '1' }, 'a@relay.example', from), ['relay.example', from]);
  assert.deepEqual(signingDomains({ origin: 'smtp', relay: '1' }, '', from), [from]);
  assert.deepEqual(
    signingDomains({ origin: 'smtp' }, 'joe@example.com', 'example.com'),
    [],
    'a stranger claiming our domain',
  );
  assert.deepEqual(signingDomains({ origin: 'inject' }, 'root@host.example', 'host.example'), ['host.example']);
  assert.deepEqual(signingDomains({ origin: 'forward', parent: 'x' }, 'joe@example.com', 'example.com'), []);
  assert.deepEqual(signingDomains({ origin: 'bounce', parent: 'x' }, '', 'example.com'), []);
  assert.equal(fromDomain('Subject: x\nFrom: "Joe (the boss)" <joe@Example.COM.>\nTo: a@b.example\n'), 'example.com');
  assert.equal(fromDomain('from:\n joe@ex.example (Joe)\n'), 'ex.example');
  assert.equal(fromDomain('To: a@b.example\n'), undefined);
});

void test('a relay client whose envelope domain has no key: signed for the From domain that has one', async () => {
  const { root, path } = setup();
  generateKey({ root, domain: 'example.com', selector: 's1', algorithm: 'ed25519', activate: true });
  const out = await new DkimSigner(root).outcome(path, { origin: 'smtp', relay: '1' }, 'bounces@lists.example');
  assert.equal(out.kind, 'signed');
  assert.equal(out.kind === 'signed' ? out.domain : '', 'example.com');
});

void test('no key, not ours, or already signed: unsigned, with the reason', async () => {
  const { root, path } = setup();
  const s = new DkimSigner(root);
  assert.deepEqual(await s.outcome(path, { origin: 'smtp', auth: 'joe@example.com' }, 'joe@example.com'), {
    kind: 'unsigned',
    why: 'no DKIM key for example.com',
  });
  generateKey({ root, domain: 'example.com', selector: 's1', algorithm: 'ed25519', activate: true });
  const stranger = await s.outcome(path, { origin: 'smtp' }, 'joe@example.com');
  assert.equal(stranger.kind, 'unsigned');
  const signed = join(root, 'signed');
  writeFileSync(signed, 'DKIM-Signature: v=1; a=rsa-sha256; d=example.com;\n s=x; b=abc\n' + MESSAGE);
  assert.deepEqual(await s.outcome(signed, { origin: 'inject' }, 'joe@example.com'), {
    kind: 'unsigned',
    why: 'already signed by example.com',
  });
  assert.equal(signedBy('DKIM-Signature: v=1; d=other.example; s=x\n', 'example.com'), false);
});

void test('keys: a selector is never overwritten, rotate makes a new active one, bad names are refused', () => {
  const { root } = setup();
  const first = generateKey({ root, domain: 'example.com', selector: 'a', algorithm: 'ed25519', activate: false });
  assert.throws(
    () => generateKey({ root, domain: 'example.com', selector: 'a', algorithm: 'ed25519', activate: false }),
    /exists: a selector names one key/,
  );
  assert.equal(readFileSync(first.path, 'latin1').includes('PRIVATE KEY'), true);
  const sel = newSelector(root, 'example.com', new Date('2026-12-04T00:00:00Z'));
  assert.equal(sel, 'q20261204');
  const second = generateKey({ root, domain: 'example.com', selector: sel, algorithm: 'rsa-2048', activate: true });
  assert.equal(second.active, true);
  assert.equal(activeSelector(root, 'example.com'), 'q20261204');
  assert.deepEqual(listSelectors(root, 'example.com'), ['a', 'q20261204']);
  assert.equal(publicRecord(readKey(root, 'example.com', 'q20261204').privateKey), second.record);
  assert.throws(
    () => generateKey({ root, domain: 'no_domain', selector: 'a', algorithm: 'ed25519', activate: false }),
    /not a domain name/,
  );
  assert.throws(
    () => generateKey({ root, domain: 'example.com', selector: '../x', algorithm: 'ed25519', activate: false }),
    /not a DKIM selector/,
  );
});

void test('with no key for any domain the message is not read: unsigned, naming the envelope domain', async () => {
  const { root } = setup();
  // the path names no file: reading it would reject
  const out = await new DkimSigner(root).outcome(join(root, 'gone'), { origin: 'smtp', relay: '1' }, 'joe@Example.com');
  assert.deepEqual(out, { kind: 'unsigned', why: 'no DKIM key for example.com' });
  assert.deepEqual(await new DkimSigner(root).outcome(join(root, 'gone'), { origin: 'inject' }, ''), {
    kind: 'unsigned',
    why: 'no DKIM key for any domain',
  });
});

void test('a header section longer than the first read: a signature of ours at its end is still seen', async () => {
  const { root } = setup();
  generateKey({ root, domain: 'example.com', selector: 's1', algorithm: 'ed25519', activate: true });
  const long = `X-Long: ${'a'.repeat(70)}\n`.repeat(400); // about 32 KiB of header before the signature
  const path = join(root, 'long');
  writeFileSync(path, `${long}DKIM-Signature: v=1; a=ed25519-sha256; d=example.com; s=s1; b=abc\n${MESSAGE}`);
  assert.deepEqual(await new DkimSigner(root).outcome(path, { origin: 'inject' }, 'joe@example.com'), {
    kind: 'unsigned',
    why: 'already signed by example.com',
  });
  // and one of another domain there does not stop the signing
  const other = join(root, 'other');
  writeFileSync(other, `${long}DKIM-Signature: v=1; d=other.example; s=x; b=abc\n${MESSAGE}`);
  assert.equal((await new DkimSigner(root).outcome(other, { origin: 'inject' }, 'joe@example.com')).kind, 'signed');
});
