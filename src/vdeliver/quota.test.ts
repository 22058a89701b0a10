// Quota at delivery: the one 90 % warning, a message bigger than the quota, the domain quota and its usage cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory, type Directory } from '../directory/index.js';
import { DOMAIN_SIZE_FILE, vdeliver } from './index.js';

const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const RP = 'Return-Path: <ann@other.example>\n';
const dt = (ext: string): string => `Delivered-To: example.com-${ext}@example.com\n`;

interface World {
  root: string;
  dir: Directory;
  msg: string;
  now: number;
  done: () => Promise<void>;
}

/** A root with example.com, mailboxes joe and ann, and a message that is exactly 1000 bytes once prefixed for joe. */
async function world(): Promise<World> {
  const root = mkdtempSync(join(tmpdir(), 'quail-quota-'));
  const dir = await openDirectory({ root });
  await createDomain({ root, dir }, { name: 'example.com', account: acct });
  await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
  await createMailbox({ root, dir }, { address: 'ann@example.com', password: 'pw' });
  const msg = join(root, 'msg');
  const head = 'Subject: hi\n\n';
  writeFileSync(msg, head + 'x'.repeat(1000 - RP.length - dt('joe').length - head.length - 1) + '\n');
  return {
    root,
    dir,
    msg,
    now: Date.UTC(2026, 0, 1),
    done: async () => {
      await dir.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const send = (w: World, ext: string) =>
  vdeliver({
    root: w.root,
    directory: w.dir,
    local: `example.com-${ext}`,
    domain: 'example.com',
    ext,
    messagePath: w.msg,
    sender: 'ann@other.example',
    dtline: dt(ext),
    rpline: RP,
    now: () => w.now,
  });

const maildir = (w: World, box: string): string => join(w.root, 'domains', 'example.com', box, 'Maildir');
const mails = (w: World, box: string): string[] =>
  readdirSync(join(maildir(w, box), 'new'))
    .sort()
    .map((f) => readFileSync(join(maildir(w, box), 'new', f), 'latin1'));
const domainWarnings = (w: World, box: string): number =>
  mails(w, box).filter((m) => /^Subject: The domain example\.com is \d+% full$/m.test(m)).length;
const warnings = (w: World, box: string): number =>
  mails(w, box).filter((m) => /^Subject: Your mailbox is \d+% full$/m.test(m)).length;

void test('quota: one warning when usage crosses 90 %, deferral when full, a new warning after the next crossing', async () => {
  const w = await world();
  try {
    await w.dir.updateMailbox('example.com', 'joe', { quotaBytes: 10000 });
    for (let i = 0; i < 8; i++) assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal(warnings(w, 'joe'), 0, 'no warning at 80 %');
    assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal(warnings(w, 'joe'), 1, 'the warning at 90 %');
    assert.match(
      mails(w, 'joe').find((m) => m.includes('% full')) ?? '',
      /^From: Mail Delivery System[^]*To: <joe@example\.com>[^]*using 9000 of 10000 bytes/,
    );
    const full = await send(w, 'joe');
    assert.equal(full.result, 'deferral');
    assert.match(full.report, /over its quota.*#4\.2\.2/);
    assert.equal(warnings(w, 'joe'), 1, 'still one warning');
    // The user empties the mailbox (as a POP client would: files and maildirsize go); the marker goes at the next delivery.
    for (const f of readdirSync(join(maildir(w, 'joe'), 'new'))) unlinkSync(join(maildir(w, 'joe'), 'new', f));
    unlinkSync(join(maildir(w, 'joe'), 'maildirsize'));
    assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal(existsSync(join(maildir(w, 'joe'), 'quotawarn')), false);
    for (let i = 0; i < 8; i++) assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal(warnings(w, 'joe'), 1, 'the second crossing warns again');
  } finally {
    await w.done();
  }
});

void test('quota: a message larger than the whole quota bounces at once (#5.2.3)', async () => {
  const w = await world();
  try {
    await w.dir.updateMailbox('example.com', 'joe', { quotaBytes: 999 });
    const r = await send(w, 'joe');
    assert.deepEqual([r.result, /larger than the whole quota.*#5\.2\.3/.test(r.report)], ['failure', true], r.report);
  } finally {
    await w.done();
  }
});

void test('quota: the domain quota counts every mailbox; its cache is recalculated after 15 minutes', async () => {
  const w = await world();
  try {
    await w.dir.updateDomain('example.com', { limits: { quotaBytes: 3000 } });
    assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal((await send(w, 'ann')).result, 'success');
    assert.equal((await send(w, 'joe')).result, 'success');
    const r = await send(w, 'ann');
    assert.equal(r.result, 'deferral');
    // 3000 of 3000: the domain's warning (no postmaster mailbox: to joe, the recipient) is counted too.
    assert.match(r.report, /domain example\.com is over its quota \(3\d\d\d of 3000 bytes\).*#4\.2\.2/);
    assert.match(
      readFileSync(join(w.root, 'domains/example.com', DOMAIN_SIZE_FILE), 'latin1'),
      /^3000S \d+\n0 0\n1000 1\n1000 1\n1000 1\n\d{3} 1\n$/,
    );
    assert.equal(domainWarnings(w, 'joe'), 1);
    for (const f of readdirSync(join(maildir(w, 'joe'), 'new'))) unlinkSync(join(maildir(w, 'joe'), 'new', f));
    assert.equal((await send(w, 'ann')).result, 'deferral', 'the cache still counts the removed mail');
    w.now += 16 * 60 * 1000;
    assert.equal((await send(w, 'ann')).result, 'success', 'recalculated: 1000 bytes used');
    const big = await send(w, 'ann');
    assert.equal(big.result, 'success');
    assert.equal((await send(w, 'joe')).result, 'deferral');
  } finally {
    await w.done();
  }
});

void test('quota: the domain warning at 90 % goes once per crossing to the postmaster mailbox, with its own marker', async () => {
  const w = await world();
  try {
    await createMailbox({ root: w.root, dir: w.dir }, { address: 'postmaster@example.com', password: 'pw' });
    await w.dir.updateDomain('example.com', { limits: { quotaBytes: 10000 } });
    const marker = join(w.root, 'domains/example.com/.quotawarn');
    for (let i = 0; i < 8; i++) assert.equal((await send(w, i % 2 ? 'ann' : 'joe')).result, 'success');
    assert.equal(domainWarnings(w, 'postmaster'), 0, 'no warning at 80 %');
    assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal(domainWarnings(w, 'postmaster'), 1, 'the warning at 90 %');
    assert.equal(existsSync(marker), true);
    const text = mails(w, 'postmaster')[0] ?? '';
    assert.match(
      text,
      /^From: Mail Delivery System <MAILER-DAEMON>\nTo: <postmaster@example\.com>\nSubject: The domain example\.com is 90% full\n/,
    );
    assert.match(text, /using 9000 of the domain's quota of 10000 bytes[^]*quota of the whole domain/);
    assert.deepEqual(
      [warnings(w, 'joe'), domainWarnings(w, 'joe'), domainWarnings(w, 'ann')],
      [0, 0, 0],
      'neither the recipient nor its mailbox warning',
    );
    assert.equal((await send(w, 'ann')).result, 'deferral', 'full (9000 + the warning)');
    assert.equal(domainWarnings(w, 'postmaster'), 1, 'still one warning');
    // Mail removed by POP clients: seen at the cache's recalculation; below 90 % the marker goes, the next crossing warns again.
    for (const box of ['joe', 'ann'])
      for (const f of readdirSync(join(maildir(w, box), 'new'))) unlinkSync(join(maildir(w, box), 'new', f));
    w.now += 16 * 60 * 1000;
    assert.equal((await send(w, 'joe')).result, 'success');
    assert.equal(existsSync(marker), false);
    for (let i = 0; i < 8; i++) assert.equal((await send(w, 'ann')).result, 'success');
    assert.equal(domainWarnings(w, 'postmaster'), 2, 'the second crossing warns again');
  } finally {
    await w.done();
  }
});
