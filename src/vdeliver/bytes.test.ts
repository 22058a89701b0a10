// vdeliver given the message's bytes (qmail-local read it whole) must do exactly what it does reading the file: the
// loop check, the quota's size, the spam verdict and the Maildir copy, compared case by case on two fresh roots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory } from '../directory/index.js';
import { vdeliver } from './index.js';

const FILTER = 'X-Quail-Filter: spamd spam score=9.1 required=5.0, tagged\n';
const SPAM = `${FILTER}X-Spam-Status: Yes, score=9.1 required=5.0\nX-Spam-Flag: YES\n`;

/** [name, mailbox, message]: each delivered on a fresh root, once by path and once by bytes. */
const CASES: ReadonlyArray<readonly [string, string, string]> = [
  ['plain', 'joe', 'Subject: hi\n\nhello\n'],
  ['no final newline', 'joe', 'Subject: hi\n\nno newline'],
  ['header only, no body, no newline', 'joe', 'Subject: hi'],
  ['empty', 'joe', ''],
  ['our Delivered-To: a loop', 'joe', 'Delivered-To: example.com-joe@example.com\nSubject: x\n\nx\n'],
  ['our Delivered-To in other case: a loop', 'joe', 'DELIVERED-TO: EXAMPLE.COM-JOE@example.com\n\nx\n'],
  ['our Delivered-To in the body: no loop', 'joe', 'Subject: x\n\nDelivered-To: example.com-joe@example.com\n'],
  ['our Delivered-To on an unterminated last line: no loop', 'joe', 'Delivered-To: example.com-joe@example.com'],
  ['CRLF header end', 'joe', 'Subject: x\r\n\r\nDelivered-To: example.com-joe@example.com\n'],
  ['spam, to a mailbox with a spam folder', 'joe', `${SPAM}Subject: buy\n\nnow\n`],
  // the verdict reads the first 8 KiB only: a status line that starts past them is not seen, by path or by bytes
  [
    'spam status past the first 8 KiB: not seen',
    'joe',
    `${FILTER.slice(0, -1)} ${'p'.repeat(9000)}\nX-Spam-Status: Yes, score=9.1 required=5.0\n\nx\n`,
  ],
  ['over the small quota', 'tiny', `Subject: big\n\n${'b'.repeat(3000)}\n`],
  ['under the small quota', 'tiny', 'Subject: small\n\ns\n'],
  ['unknown mailbox (the domain bounces)', 'nobody', 'Subject: hi\n\nx\n'],
];

async function run(message: string, box: string, bytes: boolean): Promise<{ result: string; files: string[] }> {
  const root = mkdtempSync(join(tmpdir(), 'quail-vbytes-'));
  const dir = await openDirectory({ root });
  try {
    const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    await createDomain({ root, dir }, { name: 'example.com', account: acct });
    await createMailbox({ root, dir }, { address: 'joe@example.com', password: 'pw' });
    await createMailbox({ root, dir }, { address: 'tiny@example.com', password: 'pw', quotaBytes: 2000 });
    await dir.updateMailbox('example.com', 'joe', { spamFolder: 'Junk' });
    const msg = join(root, 'msg');
    writeFileSync(msg, message, 'latin1');
    const r = await vdeliver({
      root,
      directory: dir,
      local: `example.com-${box}`,
      domain: 'example.com',
      ext: box,
      messagePath: msg,
      ...(bytes ? { message: readFileSync(msg) } : {}),
      sender: 'ann@other.example',
      dtline: `Delivered-To: example.com-${box}@example.com\n`,
      rpline: 'Return-Path: <ann@other.example>\n',
      now: () => 1_800_000_000_000,
    });
    const files: string[] = [];
    const md = join(root, 'domains', 'example.com');
    for (const where of ['joe/Maildir/new', 'joe/Maildir/.Junk/new', 'tiny/Maildir/new']) {
      let names: string[] = [];
      try {
        names = readdirSync(join(md, where));
      } catch {
        // not made
      }
      for (const n of names) files.push(`${where}: ${readFileSync(join(md, where, n), 'latin1')}`);
    }
    return { result: `${r.result} ${r.report.split(root).join('ROOT')}`, files: files.sort() };
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
}

void test('vdeliver with the message bytes: the same result and the same Maildir files as with the file, case by case', async () => {
  for (const [name, box, message] of CASES) {
    const byPath = await run(message, box, false);
    const byBytes = await run(message, box, true);
    assert.deepEqual(byBytes, byPath, name);
  }
  // the cases reach what they are about (so that "the same" is not the same nothing)
  const loop = await run(CASES[4]?.[2] ?? '', 'joe', true);
  assert.match(loop.result, /^failure .*#5\.4\.6/);
  const spam = await run(CASES[9]?.[2] ?? '', 'joe', true);
  assert.equal(spam.files.length, 1);
  assert.match(spam.files[0] ?? '', /^joe\/Maildir\/\.Junk\/new: /);
  const over = await run(CASES[11]?.[2] ?? '', 'tiny', true);
  assert.match(over.result, /#5\.2\.3/);
});
