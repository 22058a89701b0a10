// mayUseSender on a real (SQLite) directory: which MAIL FROM each login may use after AUTH (issue 12 part 4).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDirectory } from './open.js';
import { mayUseSender } from './senders.js';

void test('mayUseSender: own addresses, aliases to the login, box-ext, admins; never a foreign domain', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-senders-'));
  const dir = await openDirectory({ root });
  try {
    const account = { user: 'quail', uid: 4242, gid: 4243 };
    await dir.addDomain({ name: 'example.org', account });
    await dir.addDomain({ name: 'other.test', account });
    await dir.addAliasDomain('example.net', 'example.org');
    const box = (local: string, flags: Array<'domain-admin' | 'system-admin'> = []) =>
      dir.addMailbox({ domain: 'example.org', local, passwordHash: '$scrypt$x', flags });
    await box('joe');
    await box('ann');
    await box('boss', ['domain-admin']);
    await box('root', ['system-admin']);
    await dir.addMailbox({ domain: 'other.test', local: 'zed', passwordHash: '$scrypt$x' });
    await dir.addAlias('example.org', 'sales', ['ann@example.org', '&joe@example.net']);
    await dir.addAlias('example.org', 'info', ['ann@example.org']);
    await dir.addAlias('example.org', 'joe-list', ['ann@example.org']);
    // zed administers example.org by domain_admins (quail domain admin add), from another domain (issue 19)
    await dir.addDomainAdmin('example.org', 'zed@other.test');
    await dir.addMailbox({ domain: 'other.test', local: 'yan', passwordHash: '$scrypt$x' });
    const table: Array<[string, string, boolean]> = [
      ['joe@example.org', 'joe@example.org', true],
      ['joe@example.org', 'JOE@Example.ORG', true],
      ['joe@example.org', 'joe@example.net', true], // alias domain
      ['joe@example.org', 'sales@example.org', true], // alias with joe among its targets
      ['joe@example.org', 'sales@example.net', true],
      ['joe@example.org', 'info@example.org', false], // alias that is not joe's
      ['joe@example.org', 'joe-news@example.org', true], // box-ext, delivered to joe
      ['joe@example.org', 'joe-list@example.org', false], // an alias of that exact name goes elsewhere
      ['joe@example.org', 'ann@example.org', false],
      ['joe@example.org', 'nobody@example.org', false],
      ['joe@example.org', 'joe@other.test', false],
      ['joe@example.org', 'joe@gmail.example', false],
      ['joe@example.org', '', false],
      ['joe@example.org', 'joe', false],
      ['boss@example.org', 'anything@example.org', true],
      ['boss@example.org', 'anything@example.net', true],
      ['boss@example.org', 'zed@other.test', false],
      ['boss@example.org', '', true],
      ['root@example.org', 'zed@other.test', true],
      ['root@example.org', 'someone@gmail.example', false],
      ['root@example.org', '', true],
      ['zed@other.test', 'anything@example.org', true], // the domain it administers, and its alias domain
      ['zed@other.test', 'anything@example.net', true],
      ['zed@other.test', 'zed@other.test', true],
      ['zed@other.test', 'yan@other.test', false], // its own domain it does not administer
      ['zed@other.test', 'someone@gmail.example', false],
      ['zed@other.test', '', true],
      ['yan@other.test', '', false],
      ['gone@example.org', 'gone@example.org', false], // a login that no longer exists
    ];
    for (const [login, sender, want] of table)
      assert.equal(await mayUseSender(dir, login, sender), want, `${login} as <${sender}>`);
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
});
