// Control: the three read states (missing, present, unreadable), defaults from `me` and their fallbacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, mkdirSync, readSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CATALOGUE, Control, ControlReadError, controlDef, type ControlName } from './index.js';

function root(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'quail-control-'));
  mkdirSync(join(dir, 'control'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'control', name), text, 'latin1');
  return dir;
}

/** Makes control/<name> unreadable for root too: a directory, or a symlink loop. */
function breakFile(dir: string, name: string, how: 'dir' | 'loop'): void {
  const p = join(dir, 'control', name);
  if (how === 'dir') mkdirSync(p);
  else {
    symlinkSync(`${name}.b`, p);
    symlinkSync(name, `${p}.b`);
  }
}

void test('missing -> default: every catalogue entry read from an empty control dir', () => {
  const c = new Control(root({ me: 'mx.test\n' }));
  for (const d of CATALOGUE) {
    if (d.name === 'me') continue;
    assert.equal(c.exists(d.name), false, d.name);
    if (d.kind === 'number') assert.equal(c.number(d.name).source, 'default', d.name);
    else assert.equal(c.single(d.name).source, 'default', d.name);
  }
});

const SINGLE_DEFAULTS: ReadonlyArray<readonly [ControlName, string | null, string | null]> = [
  // [name, default with me = mx.test, default without me]
  ['envnoathost', 'mx.test', 'envnoathost'],
  ['bouncehost', 'mx.test', 'bouncehost'],
  ['doublebouncehost', 'mx.test', 'doublebouncehost'],
  ['defaulthost', 'mx.test', 'defaulthost'],
  ['defaultdomain', 'mx.test', 'defaultdomain'],
  ['plusdomain', 'mx.test', 'plusdomain'],
  ['idhost', 'mx.test', 'idhost'],
  ['smtpgreeting', 'mx.test', null], // G.1: qmail-smtpd then fails
  ['helohost', 'mx.test', null], // G.1: qmail-remote then defers
  ['localiphost', 'mx.test', null],
  ['bouncefrom', 'MAILER-DAEMON', 'MAILER-DAEMON'],
  ['doublebounceto', 'postmaster', 'postmaster'],
  ['bounceformat', 'dsn', 'dsn'],
  ['quailuser', null, null],
  ['me', null, null],
];

void test('G: single-value defaults from me, and their literal fallbacks', () => {
  const withMe = new Control(root({ me: 'mx.test\n' }));
  const noMe = new Control(root());
  for (const [name, a, b] of SINGLE_DEFAULTS) {
    if (name !== 'me') assert.deepEqual(withMe.single(name), { value: a, source: 'default' }, `${name} with me`);
    assert.deepEqual(noMe.single(name), { value: b, source: 'default' }, `${name} without me`);
  }
});

void test('present -> parsed, source file', () => {
  const c = new Control(
    root({
      me: 'mx.test \n',
      bouncehost: 'b.test\nignored\n',
      locals: '# c\nA.test\n\nb.test  \n',
      virtualdomains: 'v.test:v\nV.TEST:w\n',
      queuelifetime: '3600junk\n',
      concurrencyremote: '500\n',
      databytes: 'x1\n',
    }),
  );
  assert.equal(c.me(), 'mx.test');
  assert.deepEqual(c.single('bouncehost'), { value: 'b.test', source: 'file' });
  assert.deepEqual(c.list('locals'), { value: ['A.test', 'b.test'], source: 'file' });
  const vd = c.map('virtualdomains');
  assert.equal(vd.source, 'file');
  assert.equal(vd.value?.get('v.test')?.value, 'w');
  assert.deepEqual(c.number('queuelifetime'), { value: 3600, source: 'file' });
  assert.deepEqual(c.number('concurrencyremote'), { value: 120, source: 'file' }); // capped by conf-spawn
  assert.deepEqual(c.number('databytes'), { value: 36700160, source: 'default' }); // not a digit: counts as absent
  assert.deepEqual(c.number('concurrencylocal'), { value: 10, source: 'default' });
  assert.deepEqual(c.number('timeoutconnect'), { value: 60, source: 'default' });
});

void test('locals: missing -> [me]; missing without me -> null; empty file -> no local domains', () => {
  assert.deepEqual(new Control(root({ me: 'mx.test\n' })).list('locals'), { value: ['mx.test'], source: 'default' });
  assert.deepEqual(new Control(root()).list('locals'), { value: null, source: 'default' });
  assert.deepEqual(new Control(root({ me: 'mx.test\n', locals: '' })).list('locals'), { value: [], source: 'file' });
  assert.deepEqual(new Control(root()).map('virtualdomains'), { value: null, source: 'default' });
  assert.deepEqual(new Control(root()).list('rcpthosts'), { value: null, source: 'default' });
});

void test('unreadable -> ControlReadError (temporary), never a silent default', () => {
  for (const how of ['dir', 'loop'] as const) {
    const dir = root({ me: 'mx.test\n' });
    for (const name of ['locals', 'virtualdomains', 'queuelifetime', 'bouncehost']) breakFile(dir, name, how);
    const c = new Control(dir);
    const isReadError = (e: unknown): boolean =>
      e instanceof ControlReadError && e.temporary && e.file === join(dir, 'control', 'locals');
    assert.throws(() => c.list('locals'), isReadError, how);
    assert.throws(() => c.map('virtualdomains'), ControlReadError, how);
    assert.throws(() => c.number('queuelifetime'), ControlReadError, how);
    assert.throws(() => c.single('bouncehost'), ControlReadError, how);
  }
});

void test('unreadable me breaks its dependants; a dangling symlink is simply missing', () => {
  const dir = root();
  breakFile(dir, 'me', 'dir');
  symlinkSync('nowhere', join(dir, 'control', 'helohost'));
  const c = new Control(dir);
  assert.throws(() => c.single('bouncehost'), ControlReadError);
  assert.throws(() => c.list('locals'), ControlReadError);
  const d = root({ me: 'mx.test\n' });
  symlinkSync('nowhere', join(d, 'control', 'helohost'));
  assert.deepEqual(new Control(d).single('helohost'), { value: 'mx.test', source: 'default' });
});

void test('control/ that is not a directory is unreadable, a missing root is all-missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-control-'));
  writeFileSync(join(dir, 'control'), 'not a dir\n');
  assert.throws(() => new Control(dir).me(), ControlReadError);
  assert.equal(new Control(join(dir, 'nonexistent')).me(), null);
});

void test('a Control is a snapshot: a file changed after the first read is not seen', () => {
  const dir = root({ me: 'one.test\n' });
  const c = new Control(dir);
  assert.equal(c.me(), 'one.test');
  writeFileSync(join(dir, 'control', 'me'), 'two.test\n');
  assert.equal(c.me(), 'one.test');
  assert.equal(new Control(dir).me(), 'two.test');
});

void test('bytes: latin1 round trip of a binary file', () => {
  const dir = root();
  const bin = Buffer.from([0, 1, 0xff, 0x80, 10]);
  writeFileSync(join(dir, 'control', 'morercpthosts.cdb'), bin);
  assert.deepEqual(new Control(dir).bytes('morercpthosts.cdb'), bin);
  assert.equal(new Control(root()).bytes('morercpthosts.cdb'), null);
});

void test('open: a descriptor of the file as it is now; missing -> null; unreadable -> ControlReadError', () => {
  const dir = root();
  const c = new Control(dir);
  assert.equal(c.open('morercpthosts.cdb'), null);
  writeFileSync(join(dir, 'control', 'morercpthosts.cdb'), 'abc');
  const fd = c.open('morercpthosts.cdb');
  assert.ok(fd !== null);
  try {
    const buf = Buffer.alloc(3);
    assert.equal(readSync(fd, buf, 0, 3, 0), 3);
    assert.equal(buf.toString(), 'abc');
  } finally {
    closeSync(fd);
  }
  for (const how of ['dir', 'loop'] as const) {
    const d = root();
    breakFile(d, 'morercpthosts.cdb', how);
    assert.throws(
      () => new Control(d).open('morercpthosts.cdb'),
      (e: unknown) => e instanceof ControlReadError && e.temporary,
      how,
    );
  }
});

void test('catalogue: unique names, a doc line for each, controlDef finds every entry', () => {
  const names = CATALOGUE.map((d) => d.name);
  assert.equal(new Set(names).size, names.length);
  for (const d of CATALOGUE) {
    assert.ok(d.doc.length > 10, d.name);
    assert.equal(controlDef(d.name), d);
  }
  assert.equal(controlDef('no-such-file'), undefined);
});

void test('ignored: number files that do not start with a digit or cannot be read; mapping lines without ":" or given twice; nothing else', () => {
  const r = root({ timeoutsmtpd: 'twenty\n', databytes: '1000\n', me: 'mx.test\n', concurrencyremote: ' 5\n' });
  breakFile(r, 'queuelifetime', 'dir');
  const got = new Control(r).ignored();
  assert.deepEqual(got.map((u) => u.name).sort(), ['concurrencyremote', 'queuelifetime', 'timeoutsmtpd']);
  assert.match(
    got.find((u) => u.name === 'timeoutsmtpd')?.why ?? '',
    /^does not start with a digit, so the default 1200 holds$/,
  );
  assert.match(
    got.find((u) => u.name === 'queuelifetime')?.why ?? '',
    /^unreadable \(.*\): what reads it fails temporarily until it is fixed$/,
  );
  assert.deepEqual(
    new Control(
      root({ databytes: '0\n', virtualdomains: '# note\n\na.test:a\n.b.test:b\n', smtproutes: ':relay.test\n' }),
    ).ignored(),
    [],
  );
  const maps = new Control(
    root({ virtualdomains: 'a.test:a\nb.test b\nA.TEST:other\n', smtproutes: 'x.test:[10.0.0.1]\n' }),
  ).ignored();
  assert.deepEqual(maps, [
    { name: 'virtualdomains', line: 2, why: '"b.test b" has no ":" and is ignored' },
    { name: 'virtualdomains', line: 3, why: '"A.TEST" is given again: it wins over line 1' },
  ]);
});

void test('ignored: junk lines of virtualdomains, smtproutes and the host lists, each with its line; qmail reads them as before', () => {
  const vd = 'ok.test:ok\n a.test:lead\nb.test :trail\nno colon here\n:catchall\n.sub.test:\n';
  const r = root({
    virtualdomains: vd,
    smtproutes: 'x.test:relay.test\nx y.test:relay.test\n',
    rcpthosts: 'ok.test\n lead.test\nmid dle.test\nvd.test:vd.test\n[IPv6:::1]\n.sub.test\n',
    morercpthosts: 'more.test\nmore\t2.test\n',
    locals: 'localhost\nx.test:y\n',
    badmailfrom: 'some thing\n',
  });
  const c = new Control(r);
  assert.deepEqual(
    c.ignored().map((u) => `${u.name}:${u.line ?? '-'}: ${u.why}`),
    [
      'locals:2: entry "x.test:y" has a ":", so it never matches a host (a mapping line in a list of hosts?)',
      'virtualdomains:2: pattern " a.test" has a space or tab, so it never matches',
      'virtualdomains:3: pattern "b.test " has a space or tab, so it never matches',
      'virtualdomains:4: "no colon here" has no ":" and is ignored',
      'rcpthosts:2: entry " lead.test" has a space or tab, so it never matches',
      'rcpthosts:3: entry "mid dle.test" has a space or tab, so it never matches',
      'rcpthosts:4: entry "vd.test:vd.test" has a ":", so it never matches a host (a mapping line in a list of hosts?)',
      'morercpthosts:2: entry "more\\t2.test" has a space or tab, so it never matches',
      'smtproutes:2: pattern "x y.test" has a space or tab, so it never matches',
    ],
  );
  // qmail's reading is untouched: the junk is still there, the empty pattern (virtualdomains' catch-all) and an empty
  // value (A.6: not virtual) are no junk (SEMANTICS 0.2, 0.3, A.5, A.6)
  assert.deepEqual(
    [...(c.map('virtualdomains').value?.keys() ?? [])],
    ['ok.test', ' a.test', 'b.test ', '', '.sub.test'],
  );
  assert.deepEqual(c.list('rcpthosts').value, [
    'ok.test',
    ' lead.test',
    'mid dle.test',
    'vd.test:vd.test',
    '[IPv6:::1]',
    '.sub.test',
  ]);
});
