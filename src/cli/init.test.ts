// quail init on temp dirs: layout, ownership, idempotence, --domain lines, an existing tree, the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Control } from '../control/index.js';
import { route, routeControlFrom } from '../route/index.js';
import { lookupAssignment, tablePasswd } from '../users/index.js';
import { initRoot } from './init.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const NOBODY = { uid: 65534, gid: 65534 };

/** A new root below a fresh directory that every account may enter (as a mail root's parents must be). */
const tmp = (): string => {
  const parent = mkdtempSync(join(tmpdir(), 'quail-init-'));
  chmodSync(parent, 0o755);
  return join(parent, 'root');
};
const read = (root: string, rel: string): string => readFileSync(join(root, rel), 'latin1');

/** Every path under root with its content (files), mode, owner and mtime. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const p = join(root, rel);
    const st = statSync(p);
    const body = st.isDirectory() ? 'dir' : readFileSync(p, 'latin1');
    out.set(rel, `${st.mode} ${st.uid}:${st.gid} ${st.mtimeMs} ${body}`);
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(rel, n));
  };
  walk('.');
  return out;
}

void test('init: layout of a new root with one domain', () => {
  const root = tmp();
  const steps = initRoot({ root, me: 'mx.test', domains: ['Example.COM'], user: 'nobody' });
  assert.ok(
    steps.every((s) => s.action !== 'kept'),
    'a new root keeps nothing',
  );
  assert.equal(read(root, 'control/me'), 'mx.test\n');
  assert.equal(read(root, 'control/locals'), 'mx.test\n');
  assert.equal(read(root, 'control/rcpthosts'), 'mx.test\nexample.com\n');
  assert.equal(read(root, 'control/virtualdomains'), 'example.com:example.com\n');
  assert.equal(read(root, 'control/defaultdelivery'), './Maildir/\n');
  assert.equal(read(root, 'control/quailuser'), 'nobody\n');
  const pem = read(root, 'control/servercert.pem');
  assert.match(pem, /-----BEGIN PRIVATE KEY-----[\s\S]*-----BEGIN CERTIFICATE-----/);
  assert.equal(statSync(join(root, 'control/servercert.pem')).mode & 0o777, 0o600);
  assert.equal(read(root, 'users/assign'), `+example.com-:nobody:65534:65534:${root}/domains/example.com:-::\n.\n`);
  assert.ok(statSync(join(root, 'users/cdb')).size > 2048);
  for (const n of ['postmaster', 'mailer-daemon', 'root'])
    assert.equal(read(root, `alias/.qmail-${n}`), './Maildir/\n');
  assert.equal(read(root, 'domains/example.com/.qmail-postmaster'), './postmaster/Maildir/\n');
  for (const d of ['alias/Maildir/new', 'domains/example.com', 'domains/example.com/postmaster/Maildir/cur', 'queue']) {
    const st = statSync(join(root, d));
    assert.ok(st.isDirectory(), d);
    assert.deepEqual({ uid: st.uid, gid: st.gid }, NOBODY, d);
  }
  assert.equal(statSync(join(root, 'queue')).mode & 0o777, 0o700);
  assert.equal(statSync(join(root, 'domains/example.com/.qmail-postmaster')).mode & 0o002, 0, 'not world-writable');
  assert.deepEqual(readdirSync(join(root, 'domains/example.com')).sort(), ['.qmail-postmaster', 'postmaster']);
});

void test('init: the result routes and assigns like the C.5 virtual-domain set-up', () => {
  const root = tmp();
  initRoot({ root, me: 'mx.test', domains: ['example.com'], user: 'nobody' });
  const d = route('Joe@example.com', routeControlFrom(new Control(root)));
  assert.deepEqual([d.channel, d.address], ['local', 'example.com-Joe@example.com']);
  const a = lookupAssignment({ root, local: 'example.com-Joe', passwd: tablePasswd([]) });
  assert.deepEqual(
    [a.via, a.user, a.uid, a.home, a.dash, a.ext],
    ['wildcard', 'nobody', 65534, join(root, 'domains/example.com'), '-', 'Joe'],
  );
  assert.equal(route('postmaster', routeControlFrom(new Control(root))).address, 'postmaster@mx.test');
});

void test('init: a second run changes nothing', () => {
  const root = tmp();
  initRoot({ root, me: 'mx.test', domains: ['a.test', 'b.test'], user: 'nobody' });
  const before = snapshot(root);
  const steps = initRoot({ root, me: 'mx.test', domains: ['a.test', 'B.test'], user: 'nobody' });
  assert.deepEqual(
    steps.filter((s) => s.action !== 'kept'),
    [],
  );
  assert.deepEqual(snapshot(root), before);
});

void test('init: an existing tree keeps its files; only missing --domain lines are added', () => {
  const root = tmp();
  mkdirSync(join(root, 'control'), { recursive: true });
  mkdirSync(join(root, 'users'));
  writeFileSync(join(root, 'control/me'), 'old.test\n');
  writeFileSync(join(root, 'control/locals'), 'custom.test\n');
  writeFileSync(join(root, 'control/rcpthosts'), 'custom.test'); // no final newline
  writeFileSync(join(root, 'control/virtualdomains'), 'a.test:keepme\n');
  writeFileSync(join(root, 'users/assign'), '=joe:nobody:65534:65534:/home/joe:::\n.\n');
  const steps = initRoot({ root, me: 'new.test', domains: ['a.test', 'b.test'], user: 'nobody' });
  assert.equal(read(root, 'control/me'), 'old.test\n');
  assert.ok(steps.some((s) => s.detail?.includes('--me new.test ignored')));
  assert.equal(read(root, 'control/locals'), 'custom.test\n');
  assert.equal(read(root, 'control/rcpthosts'), 'custom.test\na.test\nb.test\n');
  assert.equal(read(root, 'control/virtualdomains'), 'a.test:keepme\nb.test:b.test\n');
  assert.equal(
    read(root, 'users/assign'),
    '=joe:nobody:65534:65534:/home/joe:::\n' +
      `+a.test-:nobody:65534:65534:${root}/domains/a.test:-::\n+b.test-:nobody:65534:65534:${root}/domains/b.test:-::\n.\n`,
  );
  assert.match(read(root, 'control/servercert.pem'), /CERTIFICATE/);
  // a third run with one more domain touches only what that domain needs
  const before = snapshot(root);
  initRoot({ root, domains: ['c.test'], user: 'nobody' });
  const after = snapshot(root);
  const changed = [...after.keys()].filter((k) => after.get(k) !== before.get(k)).sort();
  assert.deepEqual(
    changed.filter((k) => !k.startsWith('domains/c.test')),
    ['control/rcpthosts', 'control/virtualdomains', 'domains', 'users', 'users/assign', 'users/cdb'],
  );
  assert.match(read(root, 'users/assign'), /\+c\.test-:[^\n]*\n\.\n$/);
});

void test('init: bad arguments are permanent errors, nothing half-made', () => {
  const root = tmp();
  assert.throws(() => initRoot({ root, domains: ['../etc'], user: 'nobody' }), /not a domain name/);
  assert.throws(() => initRoot({ root, user: 'no-such-account-here' }), /no account named no-such-account-here/);
  assert.throws(() => initRoot({ root, user: 'root' }), /may not run as root/);
  assert.throws(() => initRoot({ root: '/tmp/a:b', user: 'nobody' }), /contains ':'/);
  assert.throws(() => statSync(root), /ENOENT/);
});

void test('init: the CLI prints what it did and exits 0; usage errors exit 100', () => {
  const root = tmp();
  const r = spawnSync(
    process.execPath,
    [MAIN, 'init', '--root', root, '--me', 'mx.test', '--domain', 'x.test', '--user', 'nobody'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^created {2}control\/me \(mx\.test\)$/m);
  assert.match(r.stdout, /^ran {6}users\/cdb \(newu\)$/m);
  const again = spawnSync(process.execPath, [MAIN, 'init', '--root', root, '--user', 'nobody'], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /^kept {5}control\/me$/m);
  assert.match(again.stdout, /nothing to do/);
  const bad = spawnSync(process.execPath, [MAIN, 'init', '--root', root, '--user', 'no-such-account-here'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 100);
  assert.match(bad.stderr, /^quail init: fatal: no account named/);
  assert.doesNotMatch(bad.stderr, / {4}at /);
});

void test(
  'issue 18: init warns when control/quailuser cannot reach the mail root (a clone under /root, mode 700)',
  {
    skip: process.getuid?.() !== 0 && 'only root chooses another account to run as',
  },
  () => {
    const parent = mkdtempSync(join(tmpdir(), 'quail-init-'));
    chmodSync(parent, 0o700);
    const root = join(parent, 'root');
    const r = spawnSync(process.execPath, [MAIN, 'init', '--root', root, '--me', 'mx.test', '--user', 'nobody'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^quail init: warning: the account nobody .* cannot reach the mail root ${root}: ${parent} is mode 0700`,
        'm',
      ),
    );
    assert.match(r.stderr, /chmod o\+x/);
    chmodSync(parent, 0o711);
    const fixed = spawnSync(process.execPath, [MAIN, 'init', '--root', root, '--user', 'nobody'], { encoding: 'utf8' });
    assert.equal(fixed.stderr, '', 'search permission (x) is enough');
    assert.match(fixed.stdout, /nothing to do/);
  },
);

void test('issue 18: a new root limits messages to 35 MiB (the missing databytes), and leaves the file to import', () => {
  const root = tmp();
  initRoot({ root, me: 'mx.test', user: 'nobody' });
  assert.deepEqual(new Control(root).number('databytes'), { value: 36_700_160, source: 'default' });
});
