// Maildir writing, unique names and maildirmake (library and `quail maildirmake`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deliverToMaildir, maildirMake, safeHost, UniqueNamer } from './index.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

void test('unique names: time.pid_seq.host, never repeated, host made safe', () => {
  const n = new UniqueNamer('mx/a:b', 4242, () => 1_700_000_000_999);
  assert.equal(n.next(), '1700000000.4242_1.mx\\057a\\072b');
  assert.equal(n.next(), '1700000000.4242_2.mx\\057a\\072b');
  assert.equal(safeHost('plain.host'), 'plain.host');
});

void test('deliverToMaildir: prefix + message as is in new/, 0600, tmp/ left empty', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-md-'));
  try {
    const md = join(dir, 'Maildir');
    maildirMake(md);
    const msg = join(dir, 'msg');
    writeFileSync(msg, 'Subject: x\n\nno final newline');
    const namer = new UniqueNamer('h');
    const a = await deliverToMaildir(md, Buffer.from('Return-Path: <a@b>\n'), msg, namer);
    const b = await deliverToMaildir(`${md}/`, Buffer.alloc(0), msg, namer);
    // the message's bytes instead of its path (the caller read it whole already)
    const c = await deliverToMaildir(
      md,
      Buffer.from('Return-Path: <c@d>\n'),
      Buffer.from('Subject: y\n\nbytes'),
      namer,
    );
    assert.equal(a.kind, 'ok');
    assert.equal(b.kind, 'ok');
    assert.equal(c.kind, 'ok');
    const names = readdirSync(join(md, 'new')).sort();
    assert.equal(names.length, 3);
    const contents = names.map((x) => readFileSync(join(md, 'new', x), 'latin1')).sort();
    assert.deepEqual(contents, [
      'Return-Path: <a@b>\nSubject: x\n\nno final newline',
      'Return-Path: <c@d>\nSubject: y\n\nbytes',
      'Subject: x\n\nno final newline',
    ]);
    assert.equal(statSync(join(md, 'new', names[0] ?? '')).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(md, 'tmp')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('deliverToMaildir: missing directory vs missing tmp/', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-md-'));
  try {
    const msg = join(dir, 'msg');
    writeFileSync(msg, 'x\n');
    assert.equal((await deliverToMaildir(join(dir, 'nope'), Buffer.alloc(0), msg, new UniqueNamer())).kind, 'nochdir');
    mkdirSync(join(dir, 'half'));
    mkdirSync(join(dir, 'half', 'new'));
    assert.equal((await deliverToMaildir(join(dir, 'half'), Buffer.alloc(0), msg, new UniqueNamer())).kind, 'error');
    assert.deepEqual(readdirSync(join(dir, 'half', 'new')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('quail maildirmake creates DIR/{tmp,new,cur} 0700 and refuses an existing DIR', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-md-'));
  try {
    const md = join(dir, 'Maildir');
    const r = spawnSync(process.execPath, [CLI, 'maildirmake', md], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const p of [md, join(md, 'tmp'), join(md, 'new'), join(md, 'cur')]) {
      const st = statSync(p);
      assert.ok(st.isDirectory());
      assert.equal(st.mode & 0o7777, 0o700, p);
    }
    const again = spawnSync(process.execPath, [CLI, 'maildirmake', md], { encoding: 'utf8' });
    assert.equal(again.status, 100);
    assert.match(again.stderr, /^quail maildirmake: fatal: .*already exists/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
