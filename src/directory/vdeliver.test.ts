// vdeliver into real Maildirs on a temp root: mailbox, aliases, every unknown-address policy, quota, loops; passwords.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authenticate, createDomain, createMailbox, openDirectory, parseVdeliverLine, vdeliver, verifyPassword, hashPassword } from './index.js';
import type { Directory, UnknownPolicy } from './index.js';

const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

async function world(policy?: UnknownPolicy): Promise<{ root: string; dir: Directory; msg: string; done: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'quail-vdeliver-'));
  const dir = await openDirectory({ root });
  await createDomain({ root, dir }, { name: 'example.com', account: acct, ...(policy ? { policy } : {}) });
  await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
  const msg = join(root, 'msg');
  writeFileSync(msg, 'Subject: hi\n\nhello\n');
  return { root, dir, msg, done: async () => { await dir.close(); rmSync(root, { recursive: true, force: true }); } };
}

const opts = (w: { root: string; dir: Directory; msg: string }, ext: string, extra: object = {}) => ({
  root: w.root, directory: w.dir, local: `example.com-${ext}`, domain: 'example.com', ext, messagePath: w.msg,
  sender: 'ann@other.example', dtline: `Delivered-To: example.com-${ext}@example.com\n`, rpline: 'Return-Path: <ann@other.example>\n', ...extra,
});

const newMail = (root: string, box: string): string[] => {
  const d = join(root, 'domains', 'example.com', box, 'Maildir', 'new');
  return readdirSync(d).map((f) => readFileSync(join(d, f), 'latin1'));
};

void test('vdeliver: a mailbox gets the message with Return-Path and Delivered-To, like qmail-local', async () => {
  const w = await world();
  try {
    const r = await vdeliver(opts(w, 'Joe'));
    assert.equal(r.result, 'success', r.report);
    assert.deepEqual(newMail(w.root, 'joe'), ['Return-Path: <ann@other.example>\nDelivered-To: example.com-Joe@example.com\nSubject: hi\n\nhello\n']);
    // The same message again carries our Delivered-To line: a loop, refused permanently.
    const looped = join(w.root, 'looped');
    writeFileSync(looped, `Delivered-To: example.com-joe@example.com\nSubject: hi\n\nx\n`);
    const r2 = await vdeliver(opts(w, 'joe', { messagePath: looped, dtline: 'Delivered-To: example.com-joe@example.com\n' }));
    assert.deepEqual([r2.result, /#5\.4\.6/.test(r2.report)], ['failure', true]);
  } finally {
    await w.done();
  }
});

void test('vdeliver: unknown addresses follow the policy (bounce, delete, forward, mailbox), the line overrides', async () => {
  const w = await world();
  try {
    const bounce = await vdeliver(opts(w, 'nobody'));
    assert.equal(bounce.result, 'failure');
    assert.match(bounce.report, /no mailbox here by that name.*#5\.1\.1/);
    assert.deepEqual(await vdeliver(opts(w, 'nobody', { policy: 'delete' })), { result: 'success', report: 'no mailbox nobody@example.com: message deleted by the domain\'s policy\n' });
    const fwd = await vdeliver(opts(w, 'nobody', { policy: 'catch@other.example' }));
    assert.deepEqual(fwd.forward, { sender: 'ann@other.example', recipients: ['catch@other.example'], prepend: 'Delivered-To: example.com-nobody@example.com\n' });
    await w.dir.updateDomain('example.com', { policy: { kind: 'mailbox', local: 'joe' } });
    assert.equal((await vdeliver(opts(w, 'nobody'))).result, 'success');
    assert.equal(newMail(w.root, 'joe').length, 1);
    assert.equal((await vdeliver(opts(w, 'x', { domain: 'nosuch.example' }))).result, 'deferral');
  } finally {
    await w.done();
  }
});

void test('vdeliver: aliases, alias domains, forwarding with a copy, bounce-all, quota deferral', async () => {
  const w = await world();
  try {
    const extra = join(w.root, 'extra');
    for (const s of ['', '/cur', '/new', '/tmp']) spawnSync('mkdir', ['-p', `${extra}/Maildir${s}`]);
    await w.dir.addAlias('example.com', 'info', [`${extra}/Maildir/`, 'boss@other.example']);
    const a = await vdeliver(opts(w, 'info'));
    assert.equal(a.result, 'success', a.report);
    assert.deepEqual(a.forward?.recipients, ['boss@other.example']);
    assert.equal(readdirSync(`${extra}/Maildir/new`).length, 1);

    await w.dir.addAliasDomain('example.net', 'example.com');
    assert.equal((await vdeliver(opts(w, 'joe', { domain: 'example.net' }))).result, 'success');
    await w.dir.updateMailbox('example.com', 'joe', { forward: ['away@other.example'], keepCopy: true });
    const f = await vdeliver(opts(w, 'joe'));
    assert.deepEqual([f.result, f.forward?.recipients], ['success', ['away@other.example']], f.report);
    assert.equal(newMail(w.root, 'joe').length, 2);

    await w.dir.updateMailbox('example.com', 'joe', { forward: [], quotaBytes: 100 });
    const q = await vdeliver(opts(w, 'joe'));
    assert.equal(q.result, 'deferral');
    assert.match(q.report, /over its quota.*#4\.2\.2/);
    assert.match(readFileSync(join(w.root, 'domains/example.com/joe/Maildir/maildirsize'), 'latin1'), /^100S\n\d+ 2\n$/);
    await w.dir.updateMailbox('example.com', 'joe', { quotaBytes: null, flags: ['bounce-all'] });
    assert.equal((await vdeliver(opts(w, 'joe'))).result, 'failure');
  } finally {
    await w.done();
  }
});

void test('parseVdeliverLine recognises the .qmail-default program line', () => {
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver '' bounce-no-mailbox`), { policy: 'bounce-no-mailbox' });
  assert.deepEqual(parseVdeliverLine(`|/usr/local/bin/quail vdeliver '' mailbox:postmaster`), { policy: 'mailbox:postmaster' });
  assert.deepEqual(parseVdeliverLine(`|/home/vpopmail/bin/vdelivermail '' delete`), { policy: 'delete' });
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver`), { policy: '' });
  assert.equal(parseVdeliverLine('./Maildir/'), null);
  assert.equal(parseVdeliverLine('| quail vdeliverx'), null);
});

void test('authenticate: user@domain and user%domain, wrong password, service flags, alias domains', async () => {
  const w = await world();
  try {
    assert.equal((await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir }))?.local, 'joe');
    assert.equal((await authenticate(w.root, 'JOE%example.com', 'pw', { directory: w.dir }))?.local, 'joe');
    assert.ok((await w.dir.getMailbox('example.com', 'joe'))?.lastLogin instanceof Date);
    assert.equal(await authenticate(w.root, 'joe@example.com', 'wrong', { directory: w.dir }), null);
    assert.equal(await authenticate(w.root, 'joe', 'pw', { directory: w.dir }), null);
    assert.equal(await authenticate(w.root, 'ann@example.com', 'pw', { directory: w.dir }), null);
    await w.dir.updateMailbox('example.com', 'joe', { flags: ['no-pop'] });
    assert.equal(await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir, service: 'pop' }), null);
    assert.equal((await authenticate(w.root, 'joe@example.com', 'pw', { directory: w.dir, service: 'smtp' }))?.local, 'joe');
    // Opening the directory itself from the root.
    assert.equal((await authenticate(w.root, 'joe@example.com', 'pw'))?.local, 'joe');
  } finally {
    await w.done();
  }
});

void test('passwords: scrypt round trip; crypt(3) $1$ $5$ $6$ hashes made by openssl verify', async () => {
  const h = await hashPassword('s3cret', { ln: 10, r: 8, p: 1 });
  assert.match(h, /^\$scrypt\$ln=10,r=8,p=1\$/);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('s3cret!', h), false);
  assert.equal(await verifyPassword('', ''), false);
  for (const [flag, salt] of [['-1', 'abcdefgh'], ['-5', 'saltsaltsalt1234'], ['-6', 'x7'], ['-5', 'rounds=1000$short'], ['-1', 'a']]) {
    for (const pw of ['secret', 'a much longer password that exceeds sixty-four bytes of length for the hash!', 'é']) {
      const args = ['passwd', flag ?? '', ...(salt?.startsWith('rounds=') ? [] : ['-salt', salt ?? '']), pw];
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const hash = r.stdout.trim();
      assert.equal(await verifyPassword(pw, hash), true, `${flag} ${hash}`);
      assert.equal(await verifyPassword(`${pw}x`, hash), false, `${flag} ${hash}`);
    }
  }
  // The SHA-crypt specification's own test vector with a custom round count.
  assert.equal(await verifyPassword('Hello world!', '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA'), true);
});

void test('vdeliver: a mailbox\'s .qmail goes to the caller\'s runner; comments only mean the Maildir; directory forwarding wins', async () => {
  const w = await world();
  try {
    const home = join(w.root, 'domains', 'example.com', 'joe');
    writeFileSync(join(home, '.qmail'), '# away\n\n');
    assert.equal((await vdeliver(opts(w, 'joe'))).result, 'success');
    assert.equal(newMail(w.root, 'joe').length, 1, 'only comments: the Maildir');
    writeFileSync(join(home, '.qmail'), '&boss@other.example\n');
    const alone = await vdeliver(opts(w, 'joe'));
    assert.deepEqual([alone.result, /has a \.qmail file.*#4\.3\.0/.test(alone.report)], ['deferral', true], 'no runner: deferred, not ignored');
    const seen: string[] = [];
    const r = await vdeliver(opts(w, 'joe-ext', {
      dotQmail: async (req: { address: string; home: string; maildir: string; text: string; checkQuota: () => Promise<unknown> }) => {
        seen.push(req.address, req.home, req.maildir, req.text, String(await req.checkQuota()));
        return { result: 'success' as const, report: 'ran\n' };
      },
    }));
    assert.deepEqual([r.result, seen], ['success', ['joe@example.com', home, `${home}/Maildir/`, '&boss@other.example\n', 'null']]);
    await w.dir.updateMailbox('example.com', 'joe', { forward: ['away@other.example'], keepCopy: false });
    const f = await vdeliver(opts(w, 'joe', { dotQmail: () => Promise.reject(new Error('the .qmail must not be read')) }));
    assert.deepEqual([f.result, f.forward?.recipients], ['success', ['away@other.example']], f.report);
  } finally {
    await w.done();
  }
});
