// The `.qmail-default` line as two readers see it: quail's parser and /bin/sh (a real qmail-local or vpopmail serving
// the same tree runs the line with sh). The catch-all word is refused when not plain, and written sh-quoted anyway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import {
  changeDomain,
  checkDrift,
  createDomain,
  createMailbox,
  openDirectory,
  type Directory,
  parsePolicy,
  repairDrift,
} from '../directory/index.js';
import {
  formatVdeliverLine,
  parsePolicyWord,
  parseVdeliverLine,
  shellWord,
  shellWords,
  vdeliver,
  type UnknownPolicy,
} from './index.js';

/**
 * Runs each line's command (the text after `|`) with /bin/sh, `quail` being a shell function that prints its argv:
 * exactly the words sh would hand the real program. Also `sh -n` on the whole text. `cwd` is where a `touch` that
 * should never run would leave its mark.
 */
function shArgv(lines: readonly string[], cwd: string): string[][] {
  const script = lines.map((l) => l.replace(/^\|\s*/, '')).join('\n');
  const n = spawnSync('/bin/sh', ['-n', '-c', script], { encoding: 'utf8' });
  assert.equal(n.status, 0, `sh -n: ${n.stderr}`);
  const prelude = `quail() { for a in "$@"; do printf '%s\\001' "$a"; done; printf '\\002'; }\n`;
  const r = spawnSync('/bin/sh', ['-c', prelude + script], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .split('\u0002')
    .slice(0, -1)
    .map((rec) => rec.split('\u0001').slice(0, -1));
}

const HOSTILE = [
  'x;sh;`id`$(id)@y',
  '$(touch pwned)@y',
  '`touch pwned`',
  "mailbox:a'b",
  "a'b'c''",
  'a b@c',
  'a|b&c>d<e',
  '*',
  '~root',
  '#comment',
  '"dq"',
  'back\\slash',
  '!x',
  '{a,b}',
  'tab\there',
  'ünïcode',
  "'",
  '-n',
];

void test('the policy word (golden): forwards and catch-all mailboxes must be plain to /bin/sh', () => {
  for (const ok of ['catch@other.example', 'first.last+tag=x@sub.example.org', 'A_b@EXAMPLE.com'])
    assert.deepEqual(parsePolicyWord(ok), { kind: 'forward', address: ok }, ok);
  assert.deepEqual(parsePolicyWord('mailbox:a.b_c-d+e=f'), { kind: 'mailbox', local: 'a.b_c-d+e=f' });
  for (const bad of [
    'x;sh;`id`$(id)@y',
    '$(id)@y',
    'a|b@c',
    'a&b@c',
    "o'brien@c",
    'a"b@c',
    'a@b;c',
    'a@b c',
    '-x@y',
    '.x@y',
    'a@',
    '@b',
    'a@b@c',
    'a*@b',
    'a@[127.0.0.1]',
    `${'a'.repeat(250)}@b.example`,
  ]) {
    const r = parsePolicyWord(bad);
    assert.equal(typeof r, 'string', bad);
    assert.match(r as string, /is not a plain user@host .*\/bin\/sh/, bad);
  }
  for (const bad of ["mailbox:a'b", 'mailbox:a$b', 'mailbox:a`b', 'mailbox:a|b', 'mailbox:a&b', 'mailbox:a*b'])
    assert.match(parsePolicyWord(bad) as string, /catch-all mailbox .* cannot be named .*\/bin\/sh/, bad);
  // The directory refuses the same words (quail domain mod --policy, the web's catch-all).
  assert.throws(() => parsePolicy('x;sh;`id`$(id)@y'), /not a plain user@host/);
  assert.throws(() => parsePolicy("mailbox:a'b"), /cannot be named/);
});

void test('shellWord: /bin/sh and parseVdeliverLine read back exactly the word written, hostile ones included', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'quail-line-'));
  try {
    const words = [...HOSTILE, 'bounce-no-mailbox', 'mailbox:joe', 'catch@other.example', ''];
    const lines = words.map((w) => `| quail vdeliver '' ${shellWord(w)}`);
    const argv = shArgv(lines, cwd);
    assert.deepEqual(
      argv,
      words.map((w) => ['vdeliver', '', w]),
    );
    assert.equal(existsSync(join(cwd, 'pwned')), false, 'nothing in a word was run');
    for (const [i, w] of words.entries()) assert.deepEqual(parseVdeliverLine(lines[i] as string), { policy: w }, w);
    // Plain words stay bare (the lines quail wrote before stay byte for byte what it writes now).
    for (const w of ['bounce-no-mailbox', 'delete', 'mailbox:joe', 'catch@other.example'])
      assert.equal(shellWord(w), w);
    // Random words: quail's reading of the quoted word is the word (sh's is checked on a sample below).
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'ab@.:-_ \t\'"`$\\;|&()<>*?~#!{}=%+,/'.split('')) }), (w) => {
        assert.deepEqual(shellWords(shellWord(w)), [w]);
      }),
      { numRuns: 2000 },
    );
    const sample = fc.sample(
      fc.string({ unit: fc.constantFrom(...'ab@.:-_ \t\'"`$\\;|&()<>*?~#!{}=%+,/'.split('')) }),
      300,
    );
    assert.deepEqual(
      shArgv(
        sample.map((w) => `| quail ${shellWord(w)}`),
        cwd,
      ),
      sample.map((w) => [w]),
    );
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

void test('parseVdeliverLine: the forms quail and vpopmail write; anything sh would expand is no policy', () => {
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver '' bounce-no-mailbox`), { policy: 'bounce-no-mailbox' });
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver "" delete`), { policy: 'delete' });
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver '' 'mailbox:joe'`), { policy: 'mailbox:joe' });
  assert.deepEqual(parseVdeliverLine(`|/home/vpopmail/bin/vdelivermail '' /home/vpopmail/domains/x/joe`), {
    policy: '/home/vpopmail/domains/x/joe',
  });
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver`), { policy: '' });
  assert.deepEqual(parseVdeliverLine(`| quail vdeliver ''`), { policy: '' });
  assert.equal(parseVdeliverLine('| quail vdeliverx'), null);
  assert.equal(parseVdeliverLine('./Maildir/'), null);
  // Written unquoted by an older quail (or by hand): still vdeliver's line — quail never hands it to a shell — but
  // the raw text is no policy word, so delivery defers on it.
  for (const line of [
    "| quail vdeliver '' x;sh;`id`$(id)@y",
    "| quail vdeliver '' mailbox:a'b",
    "| quail vdeliver '' a b",
    '| quail vdeliver $(id)',
  ]) {
    const p = parseVdeliverLine(line);
    assert.notEqual(p, null, line);
    assert.equal(typeof parsePolicyWord(p?.policy ?? ''), 'string', line);
  }
});

void test('.qmail-default: a catch-all stored unsafe before this check is written quoted, and delivery defers on it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-line-dir-'));
  let dir: Directory | null = await openDirectory({ root });
  const acct = { user: 'nobody', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  try {
    const ctx = { root, dir };
    await createDomain(ctx, { name: 'a.test', account: acct });
    // vpopmail allows a quote in a mailbox name; such a mailbox cannot be the catch-all (the line would not parse in sh).
    await createMailbox(ctx, { address: "a'b@a.test", password: null });
    const bad: UnknownPolicy[] = [
      { kind: 'mailbox', local: "a'b" },
      { kind: 'forward', address: 'x;sh;`id`$(id)@y' },
    ];
    for (const policy of bad)
      await assert.rejects(changeDomain(ctx, 'a.test', { policy }), /cannot be named|not a plain user@host/);
    const qd = join(root, 'domains', 'a.test', '.qmail-default');
    assert.equal(readFileSync(qd, 'latin1'), "| quail vdeliver '' bounce-no-mailbox\n");
    // A row an older quail stored (no check then): repair writes it sh-quoted; sh and quail read the same word.
    await dir.close();
    dir = null;
    const db = new Database(join(root, 'directory.sqlite'));
    db.prepare(`UPDATE domains SET policy = 'forward', policy_target = ? WHERE name = 'a.test'`).run(
      'x;sh;`touch pwned`$(touch pwned)@y',
    );
    db.close();
    const dir2 = await openDirectory({ root });
    try {
      writeFileSync(qd, "| quail vdeliver '' x;sh;`touch pwned`$(touch pwned)@y\n");
      assert.deepEqual(
        (await checkDrift(root, dir2)).map((x) => [x.path, x.problem]),
        [[qd, "does not hold the domain's policy"]],
      );
      await repairDrift(root, dir2);
      const line = readFileSync(qd, 'latin1');
      assert.equal(line, `| quail vdeliver '' 'x;sh;\`touch pwned\`$(touch pwned)@y'\n`);
      const cwd = join(root, 'domains', 'a.test');
      assert.deepEqual(shArgv([line.trimEnd()], cwd), [['vdeliver', '', 'x;sh;`touch pwned`$(touch pwned)@y']]);
      assert.equal(existsSync(join(cwd, 'pwned')), false);
      const word = parseVdeliverLine(line)?.policy ?? '';
      assert.equal(word, 'x;sh;`touch pwned`$(touch pwned)@y');
      writeFileSync(join(root, 'msg'), 'Subject: hi\n\nhello\n');
      const r = await vdeliver({
        root,
        directory: dir2,
        local: 'a.test-nobody',
        domain: 'a.test',
        ext: 'nobody',
        messagePath: join(root, 'msg'),
        sender: 'ann@other.example',
        dtline: 'Delivered-To: a.test-nobody@a.test\n',
        rpline: 'Return-Path: <ann@other.example>\n',
        policy: word,
      });
      assert.equal(r.result, 'deferral', r.report);
      assert.match(r.report, /not a plain user@host/);
      // The line as formatVdeliverLine makes it for every safe policy is what quail always wrote.
      assert.equal(formatVdeliverLine({ kind: 'mailbox', local: 'joe' }), "| quail vdeliver '' mailbox:joe");
    } finally {
      await dir2.close();
    }
  } finally {
    await dir?.close();
    rmSync(root, { recursive: true, force: true });
  }
});
