// The spam folder: which spam tags are trusted (a golden table), and delivery into Maildir/.Junk/ over a real directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory } from '../directory/index.js';
import { verdictOf } from './spam.js';
import { vdeliver } from './index.js';

const FILTER = 'X-Quail-Filter: spamd spam score=9.1 required=5.0, tagged\n';
const SPAM = `${FILTER}X-Spam-Status: Yes, score=9.1 required=5.0\nX-Spam-Flag: YES\nReceived: from x by y\n`;
const HAM = `${FILTER.replace('spam score', 'not spam score')}X-Spam-Status: No, score=0.3 required=5.0\nReceived: x\n`;

void test('spam verdict: only the block quail filter writes on top is trusted', () => {
  const table: Array<[string, string, ReturnType<typeof verdictOf>]> = [
    [
      'filter said spam',
      `${SPAM}Subject: s\n\nbody\n`,
      { filtered: true, spam: true, score: 'score=9.1 required=5.0' },
    ],
    ['filter said not spam', `${HAM}Subject: s\n\n`, { filtered: true, spam: false, score: 'score=0.3 required=5.0' }],
    [
      'after our Delivered-To (a forward)',
      `Delivered-To: a@b\n${SPAM}\n`,
      { filtered: true, spam: true, score: 'score=9.1 required=5.0' },
    ],
    [
      'a forward of ours (alias line, Delivered-To)',
      `Received: (qmail 12 invoked by alias); 4 Dec 2026\nDelivered-To: x@y\n${SPAM}\n`,
      { filtered: true, spam: true, score: 'score=9.1 required=5.0' },
    ],
    // a local user's injection: what follows qmail-queue's line is the user's own writing
    ['under "invoked by uid"', `Received: (qmail 12 invoked by uid 1000); 4 Dec 2026\n${SPAM}\n`, { filtered: false }],
    [
      'folded status',
      `${FILTER}X-Spam-Status: Yes,\n score=7 required=5\n\n`,
      { filtered: true, spam: true, score: 'score=7 required=5' },
    ],
    // what a sender writes is below smtpd's Received line: never read
    ['sender-written tags under Received', `Received: from evil\n${SPAM}\n`, { filtered: false }],
    ['sender-written flag only', 'X-Spam-Flag: YES\nX-Spam-Status: Yes, score=99\n\n', { filtered: false }],
    ['status without the filter line', 'X-Spam-Status: Yes, score=9\nX-Quail-Filter: x\n\n', { filtered: false }],
    ['filter without spamd (clamd only)', 'X-Quail-Filter: clamd clean\nReceived: x\n\n', { filtered: false }],
    ['flag in the body', 'Subject: s\n\nX-Quail-Filter: x\nX-Spam-Status: Yes\n', { filtered: false }],
    ['empty message', '', { filtered: false }],
  ];
  for (const [what, head, want] of table) assert.deepEqual(verdictOf(head), want, what);
});

void test('vdeliver: tagged spam goes to the spam folder (a Maildir++ folder made on first use), the rest to the inbox', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-spam-'));
  const dir = await openDirectory({ root });
  try {
    const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    await createDomain({ root, dir }, { name: 'example.com', account: acct });
    await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw', quotaBytes: 1_000_000 });
    await createMailbox({ root, dir }, { address: 'bea@example.com', password: 'pw' });
    await dir.updateMailbox('example.com', 'joe', { spamFolder: 'Junk' });
    const file = (name: string, text: string): string => {
      writeFileSync(join(root, name), text);
      return join(root, name);
    };
    const spam = file('spam', `${SPAM}Subject: buy\n\nnow\n`);
    const ham = file('ham', `${HAM}Subject: hi\n\nhello\n`);
    const forged = file('forged', `Received: from evil\nX-Quail-Filter: x\nX-Spam-Status: Yes, score=50\n\nx\n`);
    const deliver = (ext: string, messagePath: string) =>
      vdeliver({
        root,
        directory: dir,
        local: `example.com-${ext}`,
        domain: 'example.com',
        ext,
        messagePath,
        sender: 'ann@other.example',
        dtline: `Delivered-To: example.com-${ext}@example.com\n`,
        rpline: 'Return-Path: <ann@other.example>\n',
      });
    const md = join(root, 'domains', 'example.com', 'joe', 'Maildir');
    const r = await deliver('joe', spam);
    assert.equal(r.result, 'success', r.report);
    assert.match(r.report, /delivered to .*\/Maildir\/\.Junk\/\n/);
    for (const sub of ['tmp', 'new', 'cur']) assert.ok(existsSync(join(md, '.Junk', sub)), sub);
    assert.ok(existsSync(join(md, '.Junk', 'maildirfolder')));
    assert.equal(readFileSync(join(md, 'subscriptions'), 'utf8'), 'Junk\n');
    const junk = readdirSync(join(md, '.Junk', 'new'));
    assert.equal(junk.length, 1);
    assert.match(readFileSync(join(md, '.Junk', 'new', junk[0] ?? ''), 'latin1'), /^Subject: buy$/m);
    // the quota is the Maildir's, which counts its folders (Maildir++)
    assert.match(readFileSync(join(md, 'maildirsize'), 'latin1'), /\n\d+ 1\n/);
    assert.equal((await deliver('joe', ham)).result, 'success');
    assert.equal((await deliver('joe', forged)).result, 'success');
    assert.equal(readdirSync(join(md, 'new')).length, 2, 'not spam, and a forged tag: the inbox');
    assert.equal((await deliver('joe', spam)).result, 'success');
    assert.equal(readdirSync(join(md, '.Junk', 'new')).length, 2);
    assert.equal(readFileSync(join(md, 'subscriptions'), 'utf8'), 'Junk\n', 'subscribed once');
    // without the setting, spam stays in the inbox
    assert.equal((await deliver('bea', spam)).result, 'success');
    const bea = join(root, 'domains', 'example.com', 'bea', 'Maildir');
    assert.equal(readdirSync(join(bea, 'new')).length, 1);
    assert.equal(existsSync(join(bea, '.Junk')), false);
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
});

void test('directory: a spam folder name is checked (no dots, slashes or the inbox) and can be cleared', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-spam-'));
  const dir = await openDirectory({ root });
  try {
    const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    await createDomain({ root, dir }, { name: 'example.com', account: acct });
    await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
    for (const bad of ['../x', '.Junk', 'a/b', 'Spam.Sub', 'INBOX', '', 'x'.repeat(65)])
      await assert.rejects(dir.updateMailbox('example.com', 'joe', { spamFolder: bad }), /spam folder/, bad);
    assert.equal(
      (await dir.updateMailbox('example.com', 'joe', { spamFolder: 'Junk E-mail' })).spamFolder,
      'Junk E-mail',
    );
    assert.equal((await dir.getMailbox('example.com', 'joe'))?.spamFolder, 'Junk E-mail');
    assert.equal((await dir.updateMailbox('example.com', 'joe', { spamFolder: null })).spamFolder, null);
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
});
