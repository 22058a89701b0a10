// The keeper (root) repairing qmail's files from a shared directory whose rows another office forged: a domain or
// mailbox name that climbs out of the root and a domain account of root are refused and reported, the rest goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDirectory } from '../directory/index.js';
import { deliveryAccount } from '../../test/support/account.js';
import { OfficeKeeper } from './keeper.js';

const acct = deliveryAccount();

void test('keeper: forged domain, mailbox and account rows in the shared directory are refused, not written as root', async () => {
  const base = mkdtempSync(join(tmpdir(), 'quail-keeper-'));
  const file = join(base, 'shared.sqlite');
  const root = join(base, 'ny');
  mkdirSync(join(root, 'control'), { recursive: true });
  writeFileSync(join(root, 'control', 'quailuser'), `${acct.user}\n`);
  const dir = await openDirectory({ root, url: `sqlite:${file}` });
  const errors: string[] = [];
  const keeper = new OfficeKeeper({
    root,
    office: 'ny',
    intervalSeconds: 3600,
    events: {
      loaded: () => undefined,
      error: (e) => errors.push(e.error),
      moving: () => undefined,
      moved: () => undefined,
    },
    onFilesChanged: () => undefined,
    open: () => Promise.resolve(dir),
  });
  try {
    await dir.addOffice({ name: 'ny', host: '127.0.0.2' });
    for (const name of ['good.example', 'escape.example', 'rooted.example'])
      await dir.addDomain({ name, account: acct });
    await dir.addMailbox({ domain: 'good.example', local: 'joe', passwordHash: '' });
    await dir.addMailbox({ domain: 'good.example', local: 'victim', passwordHash: '' });
    // What another office (or anyone with the directory's password) can write.
    const db = new Database(file);
    db.prepare("UPDATE domains SET name = '../../escape-domain' WHERE name = 'escape.example'").run();
    db.prepare("UPDATE domains SET account = 'root', uid = 0, gid = 0 WHERE name = 'rooted.example'").run();
    db.prepare("UPDATE mailboxes SET local = '../../../escape-box' WHERE local = 'victim'").run();
    // Offices whose host, port, name or TLS requirement would become the office channel's route, report or CA file.
    const office = db.prepare('INSERT INTO offices (name, host, port, tls, created) VALUES (?, ?, ?, ?, 0)');
    office.run('atl', '127.0.0.3', 25, '');
    office.run('bos', '127.0.0.5\nevil.example', 25, '');
    office.run('sfo', '127.0.0.6', 'x', '');
    office.run('lax\n#4.3.0 injected', '127.0.0.7', 25, '');
    office.run('sea', '127.0.0.8', 25, '/etc/ssl/ca.pem\n/etc/shadow');
    db.close();
    await keeper.start();
    assert.equal(existsSync(join(base, 'escape-domain')), false, 'a domain directory made outside the root');
    assert.equal(existsSync(join(base, 'escape-box')), false, 'a Maildir made outside the root');
    const table = JSON.parse(readFileSync(join(root, 'run', 'offices.json'), 'utf8')) as {
      offices: { name: string }[];
    };
    assert.deepEqual(
      table.offices.map((o) => o.name),
      ['atl', 'ny'],
      'only the offices whose rows pass the checks are in the table',
    );
    const assign = readFileSync(join(root, 'users', 'assign'), 'latin1');
    assert.match(assign, /^\+good\.example-:/m, 'the good domain is still served');
    assert.ok(existsSync(join(root, 'domains', 'good.example', 'joe', 'Maildir', 'new')));
    assert.doesNotMatch(assign, /escape|rooted|:0:0:/, assign);
    for (const want of [
      /domain "\.\.\/\.\.\/escape-domain" refused/,
      /domain "rooted\.example" refused: the account "root"/,
      /mailbox "\.\.\/\.\.\/\.\.\/escape-box@good\.example" refused/,
      /office "bos" refused: its host/,
      /office "sfo" refused: its port/,
      /office "lax\\n#4\.3\.0 injected" refused: the office name/,
      /office "sea" refused: its TLS requirement/,
    ])
      assert.ok(
        errors.some((e) => want.test(e)),
        `${String(want)} not in:\n${errors.join('\n')}`,
      );
  } finally {
    await keeper.stop();
    rmSync(base, { recursive: true, force: true });
  }
});
