// quail dkim and quail dns as a user runs them: usage errors exit 100 with what to do; --no-check asks no resolver.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');

function run(root: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args, '--root', root], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

void test('quail dkim: bad input is refused with exit 100 and the fix; list and show on an empty root say what to do', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dkim-cli-'));
  try {
    mkdirSync(join(root, 'control'));
    writeFileSync(join(root, 'control', 'me'), 'mx.example.net\n');
    writeFileSync(join(root, 'control', 'quailuser'), 'root\n'); // as root the key's owner; not used otherwise
    const table: Array<[string[], number, RegExp]> = [
      [['dkim', 'keygen', 'example.com', '--algorithm', 'dsa'], 100, /--algorithm dsa: choose rsa-2048 or ed25519/],
      [['dkim', 'keygen', 'not a domain'], 100, /"not a domain" is not a domain name/],
      [['dkim', 'keygen', 'example.com', '--selector', 'a/b'], 100, /"a\/b" is not a DKIM selector/],
      [['dkim', 'list'], 0, /no DKIM keys: quail dkim keygen DOMAIN makes one/],
      [['dkim', 'show', 'example.com'], 100, /example\.com has no DKIM key: quail dkim keygen example\.com makes one/],
      [['dkim', 'use', 'example.com', 'nope'], 100, /example\.com has no key with selector nope: quail dkim list/],
      [
        ['dkim', 'keygen', 'Example.com', '--selector', 's1', '--algorithm', 'ed25519'],
        0,
        /s1\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=ed25519; p=/,
      ],
      [['dkim', 'keygen', 'example.com', '--selector', 's1'], 100, /s1\.key exists: a selector names one key/],
      [['dkim', 'show', 'example.com'], 0, /^s1\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=ed25519; p=[^"]+"\n$/],
    ];
    for (const [args, status, out] of table) {
      const r = run(root, ...args);
      assert.equal(r.status, status, `${args.join(' ')}: ${r.out}`);
      assert.match(r.out, out, args.join(' '));
    }
    const dns = run(root, 'dns', 'example.com', '--no-check');
    assert.equal(dns.status, 0, dns.out);
    assert.match(dns.out, /^example\.com\. IN MX 10 mx\.example\.net\.$/m);
    assert.match(dns.out, /^example\.com\. IN TXT "v=spf1 mx a:mx\.example\.net ~all"$/m);
    assert.match(dns.out, /^s1\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=ed25519; p=/m);
    assert.match(dns.out, /^_dmarc\.example\.com\. IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@example\.com"$/m);
    assert.match(dns.out, /^_smtp\._tls\.example\.com\. IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example\.com"$/m);
    assert.doesNotMatch(dns.out, /published|NOT PUBLISHED|not checked/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
