// quail quota set through the real CLI: mailbox bytes+count, Maildir++ letters, unlimited, domain quota, refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseQuotaArg } from './quota.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
const q = (args: string[]): SpawnSyncReturns<string> =>
  spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
function ok(r: SpawnSyncReturns<string>): string {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

void test('parseQuotaArg: golden table', () => {
  const table: Array<[string, { bytes: number | null; messages: number | null }]> = [
    ['1000', { bytes: 1000, messages: null }],
    ['50M,200', { bytes: 50 * 1024 * 1024, messages: 200 }],
    ['1000S,20C', { bytes: 1000, messages: 20 }],
    ['none', { bytes: null, messages: null }],
    ['none,5', { bytes: null, messages: 5 }],
  ];
  for (const [text, want] of table) assert.deepEqual(parseQuotaArg(text), want, text);
  for (const bad of ['', '1,2,3', 'lots', '10,x']) assert.throws(() => parseQuotaArg(bad), /quota|count/, bad);
});

void test('quail quota set: a mailbox, a domain, and clear refusals', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-quota-cli-'));
  try {
    ok(q(['init', '--root', root, '--me', 'mx.test.example']));
    ok(q(['domain', 'add', 'example.com', '--root', root]));
    ok(q(['user', 'add', 'joe@example.com', '--password', 'pw', '--root', root]));
    assert.equal(
      ok(q(['quota', 'set', 'joe@example.com', '2M,100', '--root', root])),
      'quota of joe@example.com: 2097152 bytes, 100 messages\n',
    );
    assert.deepEqual(JSON.parse(ok(q(['quota', 'set', 'joe@example.com', 'none', '--root', root, '--json']))), {
      address: 'joe@example.com',
      quotaBytes: null,
      quotaMessages: null,
    });
    assert.equal(
      ok(q(['quota', 'set', 'Example.COM', '1G', '--root', root])),
      'quota of domain example.com: 1073741824 bytes\n',
    );
    const info = JSON.parse(ok(q(['domain', 'info', 'example.com', '--root', root, '--json']))) as {
      limits: { quotaBytes: number };
    };
    assert.equal(info.limits.quotaBytes, 1073741824);
    const nobody = q(['quota', 'set', 'ann@example.com', '1M', '--root', root]);
    assert.deepEqual([nobody.status, /no mailbox ann@example\.com/.test(nobody.stderr)], [100, true], nobody.stderr);
    const count = q(['quota', 'set', 'example.com', '1M,5', '--root', root]);
    assert.deepEqual([count.status, /bytes only/.test(count.stderr)], [100, true], count.stderr);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
