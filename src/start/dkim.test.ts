// Outbound DKIM end to end: quail dkim keygen, submission with AUTH, the receiver verifies with the record in DNS.
// tier: system (needs quail start, swaks, python3-dkim)
import assert from 'node:assert/strict';
import { promises as dnsPromises } from 'node:dns';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { dkimVerify } from 'mailauth';
import { startDns, type DnsName } from '../../test/support/testdns.js';
import { harness, type Harness } from '../../test/support/smtpd.js';
import {
  initOwner,
  listenerPort,
  MAIN,
  quail,
  queuedCount,
  startProcess,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const run = promisify(execFile);

/**
 * swaks without blocking this process (the receiver and the DNS server run in it): its exit status and output.
 */
async function swaksAsync(
  port: number,
  args: readonly string[],
  from: string,
): Promise<{ status: number; out: string }> {
  try {
    const r = await run('swaks', ['--server', `127.0.0.1:${port}`, '--from', from, '--timeout', '20', ...args]);
    return { status: 0, out: `${r.stdout}${r.stderr}` };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { status: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Debian's python3 (python3-dkim is a Debian package; a pyenv python3 earlier in PATH would not have it). */
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const HAVE_DKIMPY = spawnSync(PY, ['-c', 'import dkim']).status === 0;

/**
 * dkimpy (python3-dkim), a verifier that shares no code with mailauth: verifies `message` with `record` as the
 * only TXT record it can look up. Returns what it printed: `pass` or `fail ...`.
 */
function dkimpy(message: string, record: string): string {
  const script = [
    'import sys, dkim',
    'rec = sys.argv[1].encode()',
    'msg = sys.stdin.buffer.read()',
    'ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: rec)',
    "print('pass' if ok else 'fail')",
  ].join('\n');
  const r = spawnSync(PY, ['-c', script, record], { input: message.replaceAll('\n', '\r\n'), encoding: 'latin1' });
  return `${r.stdout}${r.stderr}`.trim();
}

/** The TXT value `quail dkim keygen` printed: the quoted strings of its zone-file line joined. */
function recordOf(printed: string): { name: string; value: string } {
  const line = printed.split('\n').find((l) => l.includes('._domainkey.'));
  assert.ok(line, printed);
  const name = line.split(' ')[0]?.replace(/\.$/, '') ?? '';
  const value = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  return { name, value };
}

void test('a message sent with AUTH through quail is DKIM-signed once and verifies with the published key; a forward-like relay of a stranger is not signed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dkim-e2e-'));
  let rx: Harness | undefined;
  let dns: Awaited<ReturnType<typeof startDns>> | undefined;
  let q: QuailProcess | undefined;
  try {
    quail(['init', '--root', root, '--me', 'mail.example.org']);
    chmodSync(root, 0o755);
    quail(['domain', 'add', 'example.org', '--root', root]);
    quail(['user', 'add', 'joe@example.org', '--password', 's3cret', '--root', root]);
    const printed = quail(['dkim', 'keygen', 'example.org', '--selector', 'mail', '--root', root]);
    const rec = recordOf(printed);
    assert.equal(rec.name, 'mail._domainkey.example.org');
    assert.match(rec.value, /^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
    const keyFile = join(root, 'control', 'dkim', 'example.org', 'mail.key');
    const st = statSync(keyFile);
    assert.equal(st.mode & 0o777, 0o600);
    if (process.getuid?.() === 0) assert.equal(st.uid, initOwner(root).uid, 'owned by the account that signs');
    assert.match(quail(['dkim', 'list', '--root', root]), /^example\.org mail \(active\)$/m);
    assert.equal(quail(['dkim', 'show', 'example.org', '--root', root]), printed.split('\n').at(-2) + '\n');

    const zone = new Map<string, DnsName>([
      ['mail._domainkey.example.org', { txt: [rec.value] }],
      ['example.org', { mx: [{ pref: 10, exchange: 'mail.example.org' }], txt: ['v=spf1 ip4:127.0.0.0/8 -all'] }],
    ]);
    dns = await startDns(zone);
    writeFileSync(join(root, 'control', 'dnsservers'), `127.0.0.1:${dns.port}\n`);
    // quail dns: DKIM, MX and SPF published, DMARC not
    // asynchronously: the DNS server answers from this process
    const report = (await run(process.execPath, [MAIN, 'dns', 'example.org', '--root', root])).stdout;
    assert.match(report, /# DKIM: [^\n]*\nmail\._domainkey\.example\.org\. IN TXT [^\n]*\n# {3}published: v=DKIM1/);
    assert.match(
      report,
      /# MX: [^\n]*\nexample\.org\. IN MX 10 mail\.example\.org\.\n# {3}published: 10 mail\.example\.org\./,
    );
    assert.match(report, /_dmarc\.example\.org\. IN TXT "v=DMARC1; p=none; [^\n]*\n# {3}NOT PUBLISHED\n/);
    assert.match(report, /# 1 required record\(s\) missing or different/);

    rx = await harness({
      host: '127.0.0.2',
      port: 0,
      control: { me: 'mx.dest.test\n', rcpthosts: 'dest.test\n' },
    });
    const receiver = rx;
    writeFileSync(join(root, 'control', 'smtproutes'), `dest.test:127.0.0.2:${receiver.port}\n`);
    writeFileSync(join(root, 'control', 'tcp.smtp'), '127.0.0.1:allow,RELAYCLIENT=""\n:allow\n');
    q = await startProcess(root);
    const log = q.log;
    const submission = listenerPort(root, 'submission');
    const sent = await swaksAsync(
      submission,
      [
        '--tls',
        '--auth',
        'PLAIN',
        '--auth-user',
        'joe@example.org',
        '--auth-password',
        's3cret',
        '--to',
        'ann@dest.test,bob@dest.test',
        '--header',
        'Subject: signed by quail',
        '--body',
        'a body\n\nwith  spaces  and a trailing blank line\n\n',
      ],
      'joe@example.org',
    );
    assert.equal(sent.status, 0, sent.out);
    // a relay client (RELAYCLIENT) sending as a domain with no key: delivered, not signed
    const unsigned = await swaksAsync(
      listenerPort(root, 'smtp'),
      ['--to', 'ann@dest.test', '--header', 'Subject: no key'],
      'x@nokey.test',
    );
    assert.equal(unsigned.status, 0, unsigned.out);
    await waitFor(
      () => receiver.queued.length === 2 && queuedCount(root) === 0,
      30_000,
      () => `receiver has ${receiver.queued.length}, queue ${queuedCount(root)}\n${log()}`,
    );
    const signed = receiver.queued.find((m) => m.data.includes('Subject: signed by quail'));
    assert.ok(signed);
    assert.deepEqual(
      signed.recipients,
      ['ann@dest.test', 'bob@dest.test'],
      'one transaction: signing kept them together',
    );
    assert.equal(signed.data.match(/^DKIM-Signature:/gim)?.length, 1, 'signed exactly once');
    // the receiver's own Received line is on top; the signature is below it and verifies
    assert.match(
      signed.data,
      /^Received: [\s\S]*\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.org;/,
    );
    const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dns.port}`]);
    const v = await dkimVerify(Buffer.from(signed.data.replaceAll('\n', '\r\n')), {
      resolver: (name: string, type: string) => resolver.resolve(name, type) as Promise<string[][]>,
    });
    assert.equal(v.results.length, 1);
    assert.equal(v.results[0]?.status.result, 'pass', JSON.stringify(v.results[0]?.status));
    assert.equal(v.results[0]?.signingDomain, 'example.org');
    assert.match(log(), /dkim\.signed [^\n]*domain=example\.org selector=mail/);
    if (HAVE_DKIMPY || process.env['QUAIL_REQUIRE_TOOLS'] === '1') {
      assert.equal(dkimpy(signed.data, rec.value), 'pass', 'dkimpy (python3-dkim) verifies it too');
      assert.match(dkimpy(signed.data.replace('a body', 'A body'), rec.value), /^fail/, 'and fails a changed body');
    }
    const other = receiver.queued.find((m) => m.data.includes('Subject: no key'));
    assert.ok(other);
    assert.doesNotMatch(other.data, /DKIM-Signature/i);

    // rotate: the next message is signed with the new selector
    const rotated = recordOf(quail(['dkim', 'rotate', 'example.org', '--algorithm', 'ed25519', '--root', root]));
    assert.match(rotated.value, /^v=DKIM1; k=ed25519; p=/);
    assert.match(quail(['dkim', 'list', '--root', root]), /^example\.org mail q\d{8} \(active\)$/m);
    zone.set(rotated.name, { txt: [rotated.value] });
    const again = await swaksAsync(
      submission,
      [
        '--tls',
        '--auth',
        'PLAIN',
        '--auth-user',
        'joe@example.org',
        '--auth-password',
        's3cret',
        '--to',
        'ann@dest.test',
        '--header',
        'Subject: after rotate',
      ],
      'joe@example.org',
    );
    assert.equal(again.status, 0, again.out);
    await waitFor(
      () => receiver.queued.length === 3,
      30_000,
      () => `receiver has ${receiver.queued.length}\n${log()}`,
    );
    const ed = receiver.queued[2]?.data ?? '';
    assert.match(ed, /\nDKIM-Signature: v=1; a=ed25519-sha256; [^\n]*d=example\.org;\n[^\n]* s=q\d{8};/);
    const ved = await dkimVerify(Buffer.from(ed.replaceAll('\n', '\r\n')), {
      resolver: (name: string, type: string) => resolver.resolve(name, type) as Promise<string[][]>,
    });
    assert.equal(ved.results[0]?.status.result, 'pass', JSON.stringify(ved.results[0]?.status));
    if (HAVE_DKIMPY || process.env['QUAIL_REQUIRE_TOOLS'] === '1')
      assert.equal(dkimpy(ed, rotated.value), 'pass', 'dkimpy verifies the ed25519 signature (RFC 8463)');
  } finally {
    q?.killGroup();
    await rx?.close();
    await dns?.close();
    rmSync(root, { recursive: true, force: true });
  }
});
