// Golden table for findDotQmail (D.3) and newSender (D.4) against real files in a temp home.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDotQmail, newSender, safeExt } from './dotqmail.js';

function home(files: Record<string, string | { dir: true } | { mode: number; text?: string }>): string {
  const h = mkdtempSync(join(tmpdir(), 'quail-dq-'));
  for (const [name, v] of Object.entries(files)) {
    if (typeof v === 'string') writeFileSync(join(h, name), v, { mode: 0o644 });
    else if ('dir' in v) mkdirSync(join(h, name));
    else {
      writeFileSync(join(h, name), v.text ?? './Maildir/\n');
      chmodSync(join(h, name), v.mode);
    }
  }
  return h;
}

void test('safeExt lowercases A-Z and maps . to :', () => {
  assert.equal(safeExt('Foo.Bar-BAZ'), 'foo:bar-baz');
  assert.equal(safeExt('ÄB'), 'Äb');
});

interface Case {
  readonly name: string;
  readonly files: Parameters<typeof home>[0];
  readonly dash: string;
  readonly ext: string;
  readonly file: string | null;
  readonly tried: string[];
  readonly defaultPart?: string;
  readonly forwardOnly?: boolean;
  readonly failure?: string;
}

const CASES: Case[] = [
  { name: 'main address', files: { '.qmail': 'x\n' }, dash: '', ext: '', file: '.qmail', tried: ['.qmail'] },
  {
    name: 'main address: only .qmaildefault is a default (dq-025)',
    files: { '.qmail-default': 'x\n' },
    dash: '',
    ext: '',
    file: null,
    tried: ['.qmail', '.qmaildefault'],
  },
  {
    name: '.qmaildefault quirk',
    files: { '.qmaildefault': 'x\n' },
    dash: '',
    ext: '',
    file: '.qmaildefault',
    tried: ['.qmail', '.qmaildefault'],
    defaultPart: '',
  },
  {
    name: 'exact extension',
    files: { '.qmail-foo': 'x\n' },
    dash: '-',
    ext: 'foo',
    file: '.qmail-foo',
    tried: ['.qmail-foo'],
  },
  {
    name: 'default chain order',
    files: { '.qmail-default': 'x\n' },
    dash: '-',
    ext: 'foo-bar-baz',
    file: '.qmail-default',
    tried: ['.qmail-foo-bar-baz', '.qmail-foo-bar-default', '.qmail-foo-default', '.qmail-default'],
    defaultPart: 'foo-bar-baz',
  },
  {
    name: 'longest prefix wins, DEFAULT keeps case',
    files: { '.qmail-foo-default': 'x\n', '.qmail-default': 'y\n' },
    dash: '-',
    ext: 'Foo-Bar',
    file: '.qmail-foo-default',
    tried: ['.qmail-foo-bar', '.qmail-foo-default'],
    defaultPart: 'Bar',
  },
  {
    name: 'trailing dash: first default has empty DEFAULT',
    files: { '.qmail-foo-default': 'x\n' },
    dash: '-',
    ext: 'foo-',
    file: '.qmail-foo-default',
    tried: ['.qmail-foo-', '.qmail-foo-default'],
    defaultPart: '',
  },
  {
    name: 'dots become colons (dq-004)',
    files: { '.qmail-a:b': 'x\n' },
    dash: '-',
    ext: 'A.b',
    file: '.qmail-a:b',
    tried: ['.qmail-a:b'],
  },
  {
    name: 'dash with empty ext',
    files: { '.qmail-default': 'x\n' },
    dash: '-',
    ext: '',
    file: '.qmail-default',
    tried: ['.qmail-', '.qmail-default'],
    defaultPart: '',
  },
  {
    name: 'exact name ending in default (dq-026)',
    files: { '.qmail-foo-default': 'x\n' },
    dash: '-',
    ext: 'foo-DEFAULT',
    file: '.qmail-foo-default',
    tried: ['.qmail-foo-default'],
    defaultPart: 'DEFAULT',
  },
  {
    name: 'directory counts as absent (dq-017)',
    files: { '.qmail-foo': { dir: true }, '.qmail-default': 'x\n' },
    dash: '-',
    ext: 'foo',
    file: '.qmail-default',
    tried: ['.qmail-foo', '.qmail-default'],
    defaultPart: 'foo',
  },
  { name: 'nothing', files: {}, dash: '-', ext: 'x', file: null, tried: ['.qmail-x', '.qmail-default'] },
  {
    name: 'x bit: forward-only',
    files: { '.qmail': { mode: 0o744 } },
    dash: '',
    ext: '',
    file: '.qmail',
    tried: ['.qmail'],
    forwardOnly: true,
  },
  {
    name: 'group-writable is fine',
    files: { '.qmail': { mode: 0o664 } },
    dash: '',
    ext: '',
    file: '.qmail',
    tried: ['.qmail'],
  },
  {
    name: 'world-writable defers',
    files: { '.qmail': { mode: 0o646 } },
    dash: '',
    ext: '',
    file: null,
    tried: ['.qmail'],
    failure: 'Uh-oh: .qmail file is writable. (#4.7.0)',
  },
];

void test('findDotQmail golden table', () => {
  for (const c of CASES) {
    const h = home(c.files);
    try {
      const got = findDotQmail(h, c.dash, c.ext);
      assert.equal(got.file, c.file, c.name);
      assert.deepEqual(got.tried, c.tried, c.name);
      assert.equal(got.defaultPart, c.defaultPart, c.name);
      assert.equal(got.forwardOnly, c.forwardOnly ?? false, c.name);
      assert.equal(got.failure, c.failure, c.name);
      if (c.file !== null) assert.equal(typeof got.text, 'string', c.name);
    } finally {
      rmSync(h, { recursive: true, force: true });
    }
  }
});

void test('findDotQmail: unreadable file is a temporary failure naming it (as a non-root uid)', async () => {
  const { spawnSync } = await import('node:child_process');
  const h = home({ '.qmail-foo': { mode: 0o600 } });
  chmodSync(h, 0o755);
  try {
    if (process.getuid?.() !== 0) return;
    const url = new URL('./dotqmail.js', import.meta.url).href;
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { findDotQmail } from '${url}'; console.log(JSON.stringify(findDotQmail(${JSON.stringify(h)}, '-', 'foo')))`,
      ],
      { uid: 42001, gid: 42000, encoding: 'utf8' },
    );
    const got = JSON.parse(r.stdout) as { failure?: string; file: string | null };
    assert.equal(got.failure, 'Unable to open .qmail-foo: access denied. (#4.3.0)');
    assert.equal(got.file, null);
  } finally {
    rmSync(h, { recursive: true, force: true });
  }
});

void test('newSender: -owner and -owner-default files (D.4)', () => {
  const a = { dash: '-', ext: 'list', local: 'joe-list', domain: 'x.test', sender: 's@o.test' };
  let h = home({});
  assert.deepEqual(newSender(h, a), { sender: 's@o.test' });
  rmSync(h, { recursive: true });
  h = home({ '.qmail-list-owner': '' });
  assert.deepEqual(newSender(h, a), { sender: 'joe-list-owner@x.test' });
  assert.deepEqual(newSender(h, { ...a, sender: '' }), { sender: '' });
  assert.deepEqual(newSender(h, { ...a, sender: '#@[]' }), { sender: '#@[]' });
  writeFileSync(join(h, '.qmail-list-owner-default'), '');
  assert.deepEqual(newSender(h, a), { sender: 'joe-list-owner-@x.test-@[]' });
  rmSync(h, { recursive: true });
  h = home({ '.qmail-owner': { dir: true } });
  assert.deepEqual(newSender(h, { ...a, dash: '', ext: '', local: 'joe' }), { sender: 'joe-owner@x.test' });
  rmSync(h, { recursive: true });
});
