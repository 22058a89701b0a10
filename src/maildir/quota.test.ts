// Maildir++ quota: maildirsize read, recalculated, appended by deliveries and removals; the limits and the 90 % mark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  maildirMake,
  nearQuota,
  overQuota,
  quotaLine,
  readUsage,
  recordDelivery,
  recordRemoval,
  scanUsage,
  sumSizeLines,
} from './index.js';

function maildir(): { md: string; done: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'quail-mdquota-'));
  const md = join(root, 'Maildir');
  maildirMake(md);
  return { md, done: () => rmSync(root, { recursive: true, force: true }) };
}

void test('nearQuota: 90 % of either limit', () => {
  assert.equal(nearQuota({ bytes: 899, messages: 0 }, 1000, null), false);
  assert.equal(nearQuota({ bytes: 900, messages: 0 }, 1000, null), true);
  assert.equal(nearQuota({ bytes: 0, messages: 9 }, null, 10), true);
  assert.equal(nearQuota({ bytes: 10 ** 9, messages: 10 ** 6 }, null, null), false);
});

void test('quotaLine and overQuota (golden)', () => {
  assert.equal(quotaLine(1000, 10), '1000S,10C');
  assert.equal(quotaLine(1000, null), '1000S');
  assert.equal(quotaLine(null, 10), '10C');
  assert.equal(quotaLine(null, null), '');
  assert.equal(overQuota({ bytes: 900, messages: 1 }, 100, 1000, null), false);
  assert.equal(overQuota({ bytes: 900, messages: 1 }, 101, 1000, null), true);
  assert.equal(overQuota({ bytes: 0, messages: 9 }, 1, null, 10), false);
  assert.equal(overQuota({ bytes: 0, messages: 10 }, 1, null, 10), true);
  assert.equal(overQuota({ bytes: 10 ** 9, messages: 10 ** 6 }, 1, null, null), false);
  assert.deepEqual(sumSizeLines(['100 1', ' 50  2 ', '-30 -1', 'junk', '']), { bytes: 120, messages: 2 });
});

void test('readUsage: made from a scan when missing or for another quota, then summed; deliveries and removals appended', async () => {
  const { md, done } = maildir();
  try {
    writeFileSync(join(md, 'new', '1.a.host,S=300'), 'x');
    writeFileSync(join(md, 'cur', '2.b.host:2,S'), 'y'.repeat(40));
    writeFileSync(join(md, 'cur', '.hidden'), 'z');
    assert.deepEqual(scanUsage(md), { bytes: 340, messages: 2 });
    assert.deepEqual(readUsage(md, '1000S'), { bytes: 340, messages: 2 });
    assert.equal(readFileSync(join(md, 'maildirsize'), 'latin1'), '1000S\n340 2\n');
    assert.equal(statSync(join(md, 'maildirsize')).mode & 0o777, 0o600);
    recordDelivery(md, 60);
    assert.equal(await recordRemoval(md, 300, 1), undefined);
    assert.deepEqual(readUsage(md, '1000S'), { bytes: 100, messages: 2 });
    assert.equal(readFileSync(join(md, 'maildirsize'), 'latin1'), '1000S\n340 2\n60 1\n-300 -1\n');
    assert.deepEqual(
      readUsage(md, '2000S,5C'),
      { bytes: 340, messages: 2 },
      'another quota: recalculated from the files',
    );
    assert.equal(readFileSync(join(md, 'maildirsize'), 'latin1'), '2000S,5C\n340 2\n');
  } finally {
    done();
  }
});

void test('recordRemoval never creates maildirsize; other errors come back as text', async () => {
  const { md, done } = maildir();
  try {
    assert.equal(await recordRemoval(md, 100, 1), undefined);
    assert.equal(existsSync(join(md, 'maildirsize')), false);
    assert.equal(
      await recordRemoval(join(md, 'new', 'nosuch'), 1, 1),
      undefined,
      'ENOENT below a missing directory too',
    );
    writeFileSync(join(md, 'new', 'file'), '');
    assert.match((await recordRemoval(join(md, 'new', 'file'), 1, 1)) ?? '', /^maildirsize not updated \(ENOTDIR\)$/);
  } finally {
    done();
  }
});
