// quail explain on the seeds' example.com set-up (virtualdomains + `+prefix-` assign + .qmail-*) in a temp dir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tablePasswd, type PasswdSource } from '../users/index.js';
import { addAliasDomain, createDomain, createMailbox, deliveryAccount, openDirectory } from '../directory/index.js';
import { explain, explainAll } from './explain.js';
import { initRoot } from './init.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** example.com as a virtual domain for `nobody`, plus a passwd user joe (uid 42001) with a home it owns. */
function world(): { root: string; passwd: PasswdSource; dom: string } {
  const root = join(mkdtempSync(join(tmpdir(), 'quail-explain-')), 'root');
  initRoot({ root, me: 'mx.test', domains: ['example.com'], user: 'nobody' });
  const dom = join(root, 'domains', 'example.com');
  writeFileSync(join(dom, '.qmail-joe'), './joe/Maildir/\n&joe@other.test\n', { mode: 0o644 });
  writeFileSync(join(root, 'control', 'smtproutes'), '# routes\nrelay.test:[127.0.0.1]:2525\nmx.relay.test:\n');
  const home = join(root, 'home', 'joe');
  mkdirSync(home, { recursive: true });
  chownSync(home, 42001, 42000);
  const passwd = tablePasswd([
    { name: 'alias', uid: 65534, gid: 65534, home: join(root, 'alias') },
    { name: 'joe', uid: 42001, gid: 42000, home },
  ]);
  return { root, passwd, dom };
}

const text = (lines: string[]): string => lines.join('\n');

void test('explain: virtual mailbox with its own .qmail file, forwards and their sender', () => {
  const { root, passwd, dom } = world();
  const out = text(explain({ root, passwd, address: 'joe@Example.com', sender: 's@o.test' }));
  assert.match(out, /control\/virtualdomains line 1 "example\.com:example\.com" \(domain pattern "example\.com"\)/);
  assert.match(out, /local channel as example\.com-joe@Example\.com/);
  assert.match(out, /users\/cdb wildcard assignment \+example\.com-/);
  assert.match(out, new RegExp(`user nobody, uid 65534, gid 65534, home ${dom}, dash "-", ext "joe"`));
  assert.match(out, new RegExp(`uses ${dom}/\\.qmail-joe\n`));
  assert.match(out, new RegExp(`line 1: deliver to the Maildir ${dom}/joe/Maildir/`));
  assert.match(out, /line 2: forward to "joe@other\.test"/);
  assert.match(out, /forwards are sent from "s@o\.test"/);
});

void test('explain: unknown virtual mailbox bounces the qmail way, naming the address without prefix', () => {
  const { root, passwd, dom } = world();
  const out = text(explain({ root, passwd, address: 'no-body@example.com', sender: 's@o.test' }));
  assert.match(
    out,
    new RegExp(`tried in order: ${dom}/\\.qmail-no-body, ${dom}/\\.qmail-no-default, ${dom}/\\.qmail-default\n`),
  );
  assert.match(out, /bounces with "Sorry, no mailbox here by that name\. \(#5\.1\.1\)"/);
  assert.match(out, /the bounce to s@o\.test names no-body@example\.com/);
  // a .qmail-default catches it, with DEFAULT set
  writeFileSync(join(dom, '.qmail-default'), '|/bin/true\n', { mode: 0o644 });
  const caught = text(explain({ root, passwd, address: 'no-body@example.com' }));
  assert.match(caught, new RegExp(`uses ${dom}/\\.qmail-default with DEFAULT="no-body"`));
  assert.match(caught, /line 1: run the program "\/bin\/true"/);
});

void test('explain: postmaster of the domain and of the host (alias account)', () => {
  const { root, passwd, dom } = world();
  const pm = text(explain({ root, passwd, address: 'Postmaster@example.com' }));
  assert.match(pm, new RegExp(`line 1: deliver to the Maildir ${dom}/postmaster/Maildir/`));
  const host = text(explain({ root, passwd, address: 'postmaster' }));
  assert.match(host, /appended @mx\.test \(envnoathost\)/);
  assert.match(host, /control\/locals line 1/);
  assert.match(host, /the alias account \(C\.4\.2\)/);
  assert.match(host, new RegExp(`line 1: deliver to the Maildir ${root}/alias/Maildir/`));
});

void test('explain: passwd user, default delivery, world-writable .qmail defers', () => {
  const { root, passwd } = world();
  const home = join(root, 'home', 'joe');
  const bare = text(explain({ root, passwd, address: 'joe@mx.test' }));
  assert.match(bare, /the passwd account joe/);
  assert.match(bare, new RegExp(`tried in order: ${home}/\\.qmail, ${home}/\\.qmaildefault\n`));
  assert.match(bare, /dash is empty: control\/defaultdelivery is used/);
  assert.match(bare, new RegExp(`deliver to the Maildir ${home}/Maildir/`));
  const ext = text(explain({ root, passwd, address: 'joe-list@mx.test' }));
  assert.match(ext, /dash "-", ext "list"/);
  assert.match(ext, /no mailbox here by that name/);
  writeFileSync(join(home, '.qmail'), '# only a comment\n');
  chmodSync(join(home, '.qmail'), 0o646);
  assert.match(text(explain({ root, passwd, address: 'joe@mx.test' })), /would defer: Uh-oh: \.qmail file is writable/);
  chmodSync(join(home, '.qmail'), 0o644);
  assert.match(
    text(explain({ root, passwd, address: 'joe@mx.test' })),
    /only comments: the message is accepted and delivered nowhere/,
  );
});

void test('explain: remote by smtproutes, by MX, and an empty route', () => {
  const { root, passwd } = world();
  const r = text(explain({ root, passwd, address: 'a@sub.relay.test' }));
  assert.match(r, /remote channel, address unchanged: a@sub\.relay\.test/);
  // "sub.relay.test" is not "relay.test": only a ".relay.test" entry would match it (E.2)
  assert.match(r, /no control\/smtproutes entry for "sub\.relay\.test"/);
  const direct = text(explain({ root, passwd, address: 'a@Relay.test' }));
  assert.match(
    direct,
    /control\/smtproutes line 2 "relay\.test:\[127\.0\.0\.1\]:2525": relay \[127\.0\.0\.1\] port 2525/,
  );
  const empty = text(explain({ root, passwd, address: 'a@mx.relay.test' }));
  assert.match(empty, /line 3 "mx\.relay\.test:" has an empty relay: no route/);
  assert.match(empty, /MX lookup for mx\.relay\.test/);
});

void test('explain CLI: output and exit 0; missing root and unreadable controls exit 111 with a clear message', () => {
  const { root } = world();
  const ok = spawnSync(process.execPath, [MAIN, 'explain', '--root', root, 'joe@example.com'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /^recipient: joe@example\.com$/m);
  const missing = join(root, 'nope');
  const bad = spawnSync(process.execPath, [MAIN, 'explain', '--root', missing, 'joe@example.com'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 111);
  assert.equal(
    bad.stderr,
    `quail explain: fatal: mail root ${missing} does not exist; run \`quail init --root ${missing}\` first\n`,
  );
  mkdirSync(join(root, 'control', 'percenthack'));
  const broken = spawnSync(process.execPath, [MAIN, 'explain', '--root', root, 'joe@example.com'], {
    encoding: 'utf8',
  });
  assert.equal(broken.status, 111);
  assert.match(broken.stderr, /^quail explain: fatal: unable to read control file .*percenthack: EISDIR\n$/);
});

void test('issue 18: explain goes on into the user directory: mailbox, Maildir, quota, alias, and what RCPT gets', async () => {
  const root = join(mkdtempSync(join(tmpdir(), 'quail-explain-')), 'root');
  initRoot({ root, me: 'mx.test', user: 'nobody' });
  const dir = await openDirectory({ root });
  try {
    const ctx = { root, dir };
    await createDomain(ctx, { name: 'example.com', account: deliveryAccount(root, 'nobody') });
    await addAliasDomain(ctx, 'example.net', 'example.com');
    await createMailbox(ctx, { address: 'joe@example.com', password: null, quotaBytes: 10_485_760 });
    await dir.addAlias('example.com', 'info', ['joe@example.com']);
  } finally {
    await dir.close();
  }
  const joe = text(await explainAll({ root, address: 'joe@example.com' }));
  assert.match(
    joe,
    /user directory \(quail vdeliver\):\n {2}domain example\.com, policy for unknown addresses: bounce-no-mailbox/,
  );
  assert.match(joe, /mailbox joe@example\.com exists/);
  assert.match(joe, new RegExp(`Maildir ${root}/domains/example\\.com/joe/Maildir/\n`));
  assert.match(joe, /quota 10485760 bytes, unlimited messages/);
  assert.match(joe, /RCPT TO would be accepted \(250\)/);
  const ext = text(await explainAll({ root, address: 'joe-lists@example.net' }));
  assert.match(ext, /example\.net is its alias domain/);
  assert.match(ext, /mailbox joe@example\.com exists \(joe-lists is its extension address\)/);
  const info = text(await explainAll({ root, address: 'info@example.com' }));
  assert.match(info, /alias info@example\.com -> joe@example\.com/);
  const nobody = text(await explainAll({ root, address: 'nobody@example.com' }));
  assert.match(nobody, /no mailbox or alias nobody@example\.com/);
  assert.match(nobody, /RCPT TO would get 550 5\.1\.1/);
  // a domain made by hand (no vdeliver line) has no directory section
  assert.doesNotMatch(text(await explainAll({ root, address: 'postmaster@mx.test' })), /user directory/);
});
