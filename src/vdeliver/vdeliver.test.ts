// vdeliver into real Maildirs on a temp root over a real directory: mailbox, aliases, every unknown-address policy, quota, loops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory, type Directory } from '../directory/index.js';
import { parseVdeliverLine, vdeliver, type UnknownPolicy } from './index.js';

const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

async function world(
  policy?: UnknownPolicy,
): Promise<{ root: string; dir: Directory; msg: string; done: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'quail-vdeliver-'));
  const dir = await openDirectory({ root });
  await createDomain({ root, dir }, { name: 'example.com', account: acct, ...(policy ? { policy } : {}) });
  await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
  const msg = join(root, 'msg');
  writeFileSync(msg, 'Subject: hi\n\nhello\n');
  return {
    root,
    dir,
    msg,
    done: async () => {
      await dir.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const opts = (w: { root: string; dir: Directory; msg: string }, ext: string, extra: object = {}) => ({
  root: w.root,
  directory: w.dir,
  local: `example.com-${ext}`,
  domain: 'example.com',
  ext,
  messagePath: w.msg,
  sender: 'ann@other.example',
  dtline: `Delivered-To: example.com-${ext}@example.com\n`,
  rpline: 'Return-Path: <ann@other.example>\n',
  ...extra,
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
    assert.deepEqual(newMail(w.root, 'joe'), [
      'Return-Path: <ann@other.example>\nDelivered-To: example.com-Joe@example.com\nSubject: hi\n\nhello\n',
    ]);
    // The same message again carries our Delivered-To line: a loop, refused permanently.
    const looped = join(w.root, 'looped');
    writeFileSync(looped, `Delivered-To: example.com-joe@example.com\nSubject: hi\n\nx\n`);
    const r2 = await vdeliver(
      opts(w, 'joe', { messagePath: looped, dtline: 'Delivered-To: example.com-joe@example.com\n' }),
    );
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
    assert.deepEqual(await vdeliver(opts(w, 'nobody', { policy: 'delete' })), {
      result: 'success',
      report: "no mailbox nobody@example.com: message deleted by the domain's policy\n",
    });
    const fwd = await vdeliver(opts(w, 'nobody', { policy: 'catch@other.example' }));
    assert.deepEqual(fwd.forward, {
      sender: 'ann@other.example',
      recipients: ['catch@other.example'],
      prepend: 'Delivered-To: example.com-nobody@example.com\n',
    });
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
    assert.match(
      readFileSync(join(w.root, 'domains/example.com/joe/Maildir/maildirsize'), 'latin1'),
      /^100S\n\d+ 2\n$/,
    );
    await w.dir.updateMailbox('example.com', 'joe', { quotaBytes: null, flags: ['bounce-all'] });
    assert.equal((await vdeliver(opts(w, 'joe'))).result, 'failure');
  } finally {
    await w.done();
  }
});

void test('parseVdeliverLine recognises the .qmail-default program line', () => {
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver '' bounce-no-mailbox`), { policy: 'bounce-no-mailbox' });
  assert.deepEqual(parseVdeliverLine(`|/usr/local/bin/quail vdeliver '' mailbox:postmaster`), {
    policy: 'mailbox:postmaster',
  });
  assert.deepEqual(parseVdeliverLine(`|/home/vpopmail/bin/vdelivermail '' delete`), { policy: 'delete' });
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver`), { policy: '' });
  assert.equal(parseVdeliverLine('./Maildir/'), null);
  assert.equal(parseVdeliverLine('| quail vdeliverx'), null);
});

void test("vdeliver: a mailbox's .qmail goes to the caller's runner; comments only mean the Maildir; directory forwarding wins", async () => {
  const w = await world();
  try {
    const home = join(w.root, 'domains', 'example.com', 'joe');
    mkdirSync(join(home, '.qmail')); // not a file: as if there were none
    assert.equal((await vdeliver(opts(w, 'joe'))).result, 'success');
    assert.equal(newMail(w.root, 'joe').length, 1, 'a directory named .qmail: the Maildir');
    rmdirSync(join(home, '.qmail'));
    execFileSync('mkfifo', [join(home, '.qmail')]); // nor is a FIFO, which a read would wait on for ever
    assert.equal((await vdeliver(opts(w, 'joe'))).result, 'success');
    rmSync(join(home, '.qmail'));
    writeFileSync(join(home, '.qmail'), '# away\n\n');
    assert.equal((await vdeliver(opts(w, 'joe'))).result, 'success');
    assert.equal(newMail(w.root, 'joe').length, 3, 'only comments: the Maildir');
    writeFileSync(join(home, '.qmail'), '&boss@other.example\n');
    const alone = await vdeliver(opts(w, 'joe'));
    assert.deepEqual(
      [alone.result, /has a \.qmail file.*#4\.3\.0/.test(alone.report)],
      ['deferral', true],
      'no runner: deferred, not ignored',
    );
    const seen: string[] = [];
    const r = await vdeliver(
      opts(w, 'joe-ext', {
        dotQmail: async (req: {
          address: string;
          home: string;
          maildir: string;
          text: string;
          checkQuota: () => Promise<unknown>;
        }) => {
          seen.push(req.address, req.home, req.maildir, req.text, String(await req.checkQuota()));
          return { result: 'success' as const, report: 'ran\n' };
        },
      }),
    );
    assert.deepEqual(
      [r.result, seen],
      ['success', ['joe@example.com', home, `${home}/Maildir/`, '&boss@other.example\n', 'null']],
    );
    await w.dir.updateMailbox('example.com', 'joe', { forward: ['away@other.example'], keepCopy: false });
    const f = await vdeliver(
      opts(w, 'joe', { dotQmail: () => Promise.reject(new Error('the .qmail must not be read')) }),
    );
    assert.deepEqual([f.result, f.forward?.recipients], ['success', ['away@other.example']], f.report);
  } finally {
    await w.done();
  }
});
