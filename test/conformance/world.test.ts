// Tests for the runner's helpers (placeholders, fs building, normalisations, cdb records) and the runner itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCdb } from '../../src/cdb/index.js';
import { normaliseNewuStderr } from './normalise.js';
import { runCorpus } from './runner.js';
import type { Scenario } from './types.js';
import {
  buildFs,
  cdbRecords,
  decodeBytes,
  escapeBytes,
  logsafe,
  makePlaceholders,
  normaliseTokens,
  setupWorld,
} from './world.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'quail-world-'));

void test('placeholders: subst and unsubst, longer path first', () => {
  const ph = makePlaceholders('/t/w/root', '/t/w/root/qmail');
  assert.equal(ph.subst('@ROOT@/home:@QMAIL@/alias'), '/t/w/root/home:/t/w/root/qmail/alias');
  assert.equal(ph.unsubst('/t/w/root/home:/t/w/root/qmail/alias'), '@ROOT@/home:@QMAIL@/alias');
});

void test('logsafe (FORMAT.md 1.4)', () => {
  assert.equal(
    logsafe('Sorry, no mailbox here by that name. (#5.1.1)\n'),
    'Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/',
  );
  assert.equal(logsafe('a%b\tc\x7f\xe9~'), 'a_b_c__~');
});

void test('normaliseTokens (FORMAT.md 1.3)', () => {
  assert.equal(
    normaliseTokens('Received: (qmail 1234 invoked by uid 0); 2 Nov 2026 03:01:02 -0000\n'),
    'Received: (qmail @PID@ invoked by uid 0); @DATE822@\n',
  );
  assert.equal(normaliseTokens('From a@b Sun Nov  2 03:01:02 2026\n'), 'From a@b @CTIME@\n');
  assert.equal(normaliseTokens('250 ok 1767000000 qp 4242\r\n'), '250 ok @TIME@ qp @QP@\r\n');
  assert.equal(normaliseTokens('did 0+1+0/qp_77/'), 'did 0+1+0/qp_@QP@/');
  assert.equal(normaliseTokens('<1767000000.999.qmail@h>'), '<@TIME@.@PID@.qmail@h>');
});

void test('bytes: {b64}, Latin-1 strings, 5.2 escapes and cdb records', () => {
  assert.deepEqual(decodeBytes({ b64: 'AAE=' }), Buffer.from([0, 1]));
  assert.deepEqual(decodeBytes('\xe9'), Buffer.from([0xe9]));
  assert.equal(escapeBytes(Buffer.from('a\\b\x00\x7f', 'latin1')), 'a\\\\b\\x00\\x7f');
  const ph = makePlaceholders('/r', '/q');
  const db = buildCdb([
    [Buffer.from('!k\0'), Buffer.from('u\0/r/h')],
    [Buffer.alloc(0), Buffer.alloc(0)],
  ]);
  assert.deepEqual(cdbRecords(db, ph.unsubst), [
    { key: '!k\\x00', data: 'u\\x00@ROOT@/h', key_hex: '216b00', data_hex: '75002f722f68' },
    { key: '', data: '', key_hex: '', data_hex: '' },
  ]);
});

void test('buildFs: modes with special bits, numeric owners from the table, groups, maildir, parents', () => {
  const dir = tmp();
  try {
    const passwd = [{ name: 'qoalice', uid: 42001, gid: 42000, home: join(dir, 'home/qoalice') }];
    buildFs(
      [
        { path: '@ROOT@/home/qoalice', type: 'dir', mode: '1755', owner: 'qoalice' },
        {
          path: '@ROOT@/home/qoalice/.qmail',
          type: 'file',
          mode: '0600',
          owner: 'qoalice',
          group: 'qmail',
          content: '@ROOT@/x\n',
        },
        { path: '@ROOT@/deep/er/Maildir', type: 'maildir', mode: '0700', owner: 'qoalice', group: 'nofiles' },
      ],
      { subst: makePlaceholders(dir, '/q').subst, passwd },
    );
    const st = (p: string): string => {
      const s = statSync(join(dir, p));
      return `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
    };
    assert.equal(st('home/qoalice'), '1755 42001:42000');
    assert.equal(st('home/qoalice/.qmail'), '600 42001:1002');
    assert.equal(readFileSync(join(dir, 'home/qoalice/.qmail'), 'latin1'), `${dir}/x\n`);
    assert.equal(st('deep'), '755 0:0');
    for (const sub of ['', '/cur', '/new', '/tmp']) assert.equal(st(`deep/er/Maildir${sub}`), '700 42001:1001');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('setupWorld: @QMAIL@/alias is alias:qmail 2755, placeholders point into the work dir', () => {
  const dir = tmp();
  try {
    const s: Scenario = {
      id: 'x',
      kind: 'getpw',
      input: {},
      outcome: {},
      passwd: [{ name: 'alias', uid: 1001, gid: 1001, home: '@QMAIL@/alias' }],
    };
    const w = setupWorld(dir, s);
    const a = statSync(join(w.ph.qmail, 'alias'));
    assert.equal((a.mode & 0o7777).toString(8), '2755');
    assert.equal(`${a.uid}:${a.gid}`, '1001:1002');
    assert.equal(w.passwd.find((p) => p.name === 'alias')?.home, join(w.ph.qmail, 'alias'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('normaliseNewuStderr maps only the bad-format message', () => {
  assert.equal(
    normaliseNewuStderr(
      'quail newu: fatal: bad format in users/assign line 3: blank line; the old users/cdb is kept\n',
    ),
    'qmail-newu: fatal: bad format in users/assign\n',
  );
  assert.equal(normaliseNewuStderr('quail newu: fatal: unable to read x\n'), 'quail newu: fatal: unable to read x\n');
});

void test('runner: PASS, FAIL, SKIP lines, summary, temp dirs removed', async () => {
  const dir = tmp();
  try {
    const base = { oracle: {}, input: {}, outcome: {} };
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ ...base, id: 'a', kind: 'k1' }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...base, id: 'b', kind: 'k2' }));
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ ...base, id: 'c', kind: 'nope' }));
    const lines: string[] = [];
    const seen: string[] = [];
    const summary = await runCorpus({
      corpus: dir,
      out: (l) => lines.push(l),
      kinds: {
        k1: (_s, ctx) => {
          seen.push(ctx.workDir);
          return Promise.resolve({ status: 'pass' });
        },
        k2: () => Promise.resolve({ status: 'fail', diff: 'exit: expected 0\ngot 1' }),
      },
    });
    assert.deepEqual(lines, [
      'PASS a',
      'FAIL b: exit: expected 0 got 1',
      'SKIP c: no handler for kind nope yet',
      '1 passed, 1 failed, 1 skipped',
    ]);
    assert.deepEqual(summary, { passed: 1, failed: 1, skipped: 1 });
    assert.equal(seen.length, 1);
    assert.throws(() => readdirSync(seen[0] ?? ''), /ENOENT/);
    const only: string[] = [];
    await runCorpus({ corpus: dir, only: 'b', out: (l) => only.push(l), kinds: {} });
    assert.deepEqual(only, ['SKIP b: no handler for kind k2 yet', '0 passed, 0 failed, 1 skipped']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
