// The directory contract suite: one set of tests run against every backend (SQLite and PostgreSQL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LATEST as SCHEMA_VERSION } from './migrations.js';
import { DirectoryError } from './names.js';
import type { Directory } from './types.js';
import { lookupAddressByParts, type AddressLookup } from '../vdeliver/index.js';

export type DirectoryFactory = () => Promise<Directory>;

const acct = { user: 'quail', uid: 4242, gid: 4243 };

/** Registers the contract tests; each test gets a fresh, empty directory from the factory and closes it. */
export function directoryContract(name: string, factory: DirectoryFactory): void {
  const withDir = (title: string, body: (d: Directory) => Promise<void>): void => {
    void test(`${name}: ${title}`, async () => {
      const d = await factory();
      try {
        await body(d);
      } finally {
        await d.close();
      }
    });
  };

  withDir('a new directory is at the latest schema version', async (d) => {
    assert.equal(await d.schemaVersion(), SCHEMA_VERSION);
    assert.deepEqual(await d.listDomains(), []);
  });

  withDir('domains: add, get (case-insensitive), list, duplicates and bad names refused', async (d) => {
    const dom = await d.addDomain({ name: 'Example.COM', account: acct });
    assert.equal(dom.name, 'example.com');
    assert.deepEqual(dom.policy, { kind: 'bounce-no-mailbox' });
    assert.deepEqual(dom.limits, { maxMailboxes: null, maxAliases: null, maxForwards: null, quotaBytes: null });
    assert.deepEqual(dom.account, acct);
    assert.deepEqual(dom.aliases, []);
    assert.deepEqual(await d.getDomain('EXAMPLE.com'), dom);
    await d.addDomain({ name: 'b.example', account: acct, policy: { kind: 'delete' }, limits: { maxMailboxes: 5 } });
    assert.deepEqual(
      (await d.listDomains()).map((x) => x.name),
      ['b.example', 'example.com'],
    );
    await assert.rejects(d.addDomain({ name: 'example.com', account: acct }), DirectoryError);
    await assert.rejects(d.addDomain({ name: 'bad/name', account: acct }), DirectoryError);
    await assert.rejects(d.addDomain({ name: 'x.example', account: acct, limits: { maxAliases: -1 } }), DirectoryError);
    assert.equal(await d.getDomain('nosuch.example'), null);
  });

  withDir('domains: every policy kind and the limits round-trip through updateDomain', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    for (const policy of [
      { kind: 'delete' },
      { kind: 'forward', address: 'catch@other.example' },
      { kind: 'mailbox', local: 'postmaster' },
      { kind: 'bounce-no-mailbox' },
    ] as const) {
      const u = await d.updateDomain('example.com', { policy });
      assert.deepEqual(u.policy, policy);
      assert.deepEqual((await d.getDomain('example.com'))?.policy, policy);
    }
    const u = await d.updateDomain('example.com', {
      limits: { quotaBytes: 10_000_000_000, maxForwards: 3 },
      account: { user: 'x', uid: 7, gid: 8 },
    });
    assert.deepEqual(u.limits, { maxMailboxes: null, maxAliases: null, maxForwards: 3, quotaBytes: 10_000_000_000 });
    assert.deepEqual(u.account, { user: 'x', uid: 7, gid: 8 });
    await assert.rejects(d.updateDomain('nosuch.example', {}), DirectoryError);
  });

  withDir('alias domains resolve to their domain; collisions are refused', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    await d.addAliasDomain('Example.NET', 'example.com');
    assert.deepEqual((await d.getDomain('example.com'))?.aliases, ['example.net']);
    assert.equal((await d.resolveDomain('example.net'))?.name, 'example.com');
    assert.equal((await d.resolveDomain('example.com'))?.name, 'example.com');
    assert.equal(await d.getDomain('example.net'), null);
    await assert.rejects(d.addAliasDomain('example.net', 'example.com'), DirectoryError);
    await assert.rejects(d.addAliasDomain('example.com', 'example.com'), DirectoryError);
    await assert.rejects(d.addAliasDomain('x.example', 'nosuch.example'), DirectoryError);
    await assert.rejects(d.addDomain({ name: 'example.net', account: acct }), DirectoryError);
    assert.equal(await d.deleteAliasDomain('example.net'), true);
    assert.equal(await d.deleteAliasDomain('example.net'), false);
    assert.equal(await d.resolveDomain('example.net'), null);
  });

  withDir('mailboxes: add, get, list, count, update every field, delete', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    const m = await d.addMailbox({
      domain: 'example.com',
      local: 'Joe',
      passwordHash: '$scrypt$x',
      realName: 'Joe Bloggs',
      quotaBytes: 1000,
      flags: ['no-pop'],
    });
    assert.equal(m.local, 'joe');
    assert.equal(m.home, 'domains/example.com/joe');
    assert.equal(m.realName, 'Joe Bloggs');
    assert.equal(m.quotaBytes, 1000);
    assert.equal(m.quotaMessages, null);
    assert.deepEqual(m.flags, ['no-pop']);
    assert.equal(m.lastLogin, null);
    assert.deepEqual(m.forward, []);
    assert.equal(m.keepCopy, false);
    assert.ok(m.created instanceof Date && !Number.isNaN(m.created.getTime()));
    assert.deepEqual(await d.getMailbox('EXAMPLE.COM', 'JOE'), m);
    await d.addMailbox({ domain: 'example.com', local: 'ann', passwordHash: '' });
    assert.deepEqual(
      (await d.listMailboxes('example.com')).map((x) => x.local),
      ['ann', 'joe'],
    );
    assert.equal(await d.countMailboxes('example.com'), 2);
    await assert.rejects(d.addMailbox({ domain: 'example.com', local: 'joe', passwordHash: '' }), DirectoryError);
    await assert.rejects(d.addMailbox({ domain: 'nosuch.example', local: 'joe', passwordHash: '' }), DirectoryError);
    await assert.rejects(d.addMailbox({ domain: 'example.com', local: '../etc', passwordHash: '' }), DirectoryError);
    const login = new Date(1_700_000_000_000);
    const u = await d.updateMailbox('example.com', 'joe', {
      passwordHash: '$scrypt$y',
      realName: 'J',
      quotaBytes: null,
      quotaMessages: 50,
      flags: ['bounce-all', 'domain-admin'],
      forward: ['a@b.example', 'c@d.example'],
      keepCopy: true,
      lastLogin: login,
    });
    assert.deepEqual(
      { ...u, created: 0 },
      {
        ...m,
        created: 0,
        passwordHash: '$scrypt$y',
        realName: 'J',
        quotaBytes: null,
        quotaMessages: 50,
        flags: ['bounce-all', 'domain-admin'],
        forward: ['a@b.example', 'c@d.example'],
        keepCopy: true,
        lastLogin: login,
      },
    );
    assert.deepEqual(await d.getMailbox('example.com', 'joe'), u);
    // recordLogins: only last_login, never backwards, unknown mailboxes skipped, in one call for several
    await d.updateMailbox('example.com', 'joe', { passwordHash: '$scrypt$z' });
    assert.equal(
      await d.recordLogins([
        { domain: 'EXAMPLE.COM', local: 'Joe', at: new Date(1_700_000_500_000) },
        { domain: 'example.com', local: 'ann', at: new Date(1_600_000_000_000) },
        { domain: 'example.com', local: 'nosuch', at: new Date(1_700_000_500_000) },
      ]),
      2,
    );
    assert.deepEqual(await d.getMailbox('example.com', 'joe'), {
      ...u,
      passwordHash: '$scrypt$z',
      lastLogin: new Date(1_700_000_500_000),
    });
    assert.deepEqual((await d.getMailbox('example.com', 'ann'))?.lastLogin, new Date(1_600_000_000_000));
    assert.equal(await d.recordLogins([{ domain: 'example.com', local: 'joe', at: login }]), 0, 'not moved back');
    assert.deepEqual((await d.getMailbox('example.com', 'joe'))?.lastLogin, new Date(1_700_000_500_000));
    assert.equal(await d.recordLogins([]), 0);
    await assert.rejects(d.updateMailbox('example.com', 'nosuch', {}), DirectoryError);
    await assert.rejects(d.updateMailbox('example.com', 'joe', { flags: ['nonsense' as never] }), DirectoryError);
    assert.equal(await d.deleteMailbox('example.com', 'joe'), true);
    assert.equal(await d.deleteMailbox('example.com', 'joe'), false);
    assert.equal(await d.getMailbox('example.com', 'joe'), null);
  });

  withDir('limits: max mailboxes, aliases and forwards are enforced', async (d) => {
    await d.addDomain({
      name: 'example.com',
      account: acct,
      limits: { maxMailboxes: 2, maxAliases: 1, maxForwards: 1 },
    });
    await d.addMailbox({ domain: 'example.com', local: 'a', passwordHash: '' });
    await d.addMailbox({ domain: 'example.com', local: 'b', passwordHash: '' });
    await assert.rejects(d.addMailbox({ domain: 'example.com', local: 'c', passwordHash: '' }), /limit of 2 mailboxes/);
    await d.addAlias('example.com', 'info', ['a@example.com']);
    await d.addAlias('example.com', 'info', ['b@example.com']);
    await assert.rejects(d.addAlias('example.com', 'sales', ['a@example.com']), /limit of 1 aliases/);
    await d.updateMailbox('example.com', 'a', { forward: ['x@other.example'] });
    await assert.rejects(d.updateMailbox('example.com', 'b', { forward: ['x@other.example'] }), /limit of 1 forwards/);
  });

  withDir('aliases: targets keep their order, duplicates are ignored, one or all can be deleted', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    await d.addAlias('example.com', 'Info', ['joe@example.com', '/srv/mail/info/Maildir/']);
    const a = await d.addAlias('example.com', 'info', ['|/usr/bin/logger', 'joe@example.com']);
    assert.deepEqual(a, {
      domain: 'example.com',
      local: 'info',
      targets: ['joe@example.com', '/srv/mail/info/Maildir/', '|/usr/bin/logger'],
    });
    await d.addAlias('example.com', 'abuse', ['&ann@example.com']);
    // a forward to the address itself would loop: refused, as a mailbox's forward to itself
    await assert.rejects(
      d.addAlias('example.com', 'loop', ['x@other.example', 'Loop@Example.com']),
      /cannot forward to itself/,
    );
    await assert.rejects(d.addAlias('example.com', 'loop', ['&loop@example.com']), /cannot forward to itself/);
    assert.equal(await d.getAlias('example.com', 'loop'), null, 'nothing of a refused alias is kept');
    // a target is one .qmail line (vdeliver's, and quail office export's): no newline nor other control character
    await assert.rejects(d.addAlias('example.com', 'esc', ['joe\x1b[2J@example.com']), /control character/);
    await assert.rejects(d.addAlias('example.com', 'esc', ['|/usr/bin/logger\r|/bin/sh']), /control character/);
    await assert.rejects(d.addAlias('example.com', 'esc', ['joe@example.com\nx@y']), /control character/);
    await d.addMailbox({ domain: 'example.com', local: 'self', passwordHash: '' });
    await assert.rejects(
      d.updateMailbox('example.com', 'self', { forward: ['self@example.com'] }),
      /cannot forward to itself/,
    );
    assert.deepEqual(
      (await d.listAliases('example.com')).map((x) => [x.local, x.targets.length]),
      [
        ['abuse', 1],
        ['info', 3],
      ],
    );
    await assert.rejects(d.addAlias('example.com', 'x', ['not an address']), DirectoryError);
    await assert.rejects(d.addAlias('example.com', 'x', []), DirectoryError);
    await assert.rejects(d.addAlias('nosuch.example', 'x', ['a@b.example']), DirectoryError);
    assert.equal(await d.deleteAlias('example.com', 'info', '/srv/mail/info/Maildir/'), true);
    assert.deepEqual((await d.getAlias('example.com', 'info'))?.targets, ['joe@example.com', '|/usr/bin/logger']);
    assert.equal(await d.deleteAlias('example.com', 'info'), true);
    assert.equal(await d.getAlias('example.com', 'info'), null);
    assert.equal(await d.deleteAlias('example.com', 'info'), false);
  });

  withDir('deleting a domain removes its mailboxes, aliases and alias domains', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    await d.addDomain({ name: 'keep.example', account: acct });
    await d.addAliasDomain('example.net', 'example.com');
    await d.addMailbox({ domain: 'example.com', local: 'joe', passwordHash: '' });
    await d.addMailbox({ domain: 'keep.example', local: 'joe', passwordHash: '' });
    await d.addAlias('example.com', 'info', ['joe@example.com']);
    assert.equal(await d.deleteDomain('example.com'), true);
    assert.equal(await d.deleteDomain('example.com'), false);
    assert.equal(await d.resolveDomain('example.net'), null);
    assert.deepEqual(await d.listMailboxes('example.com'), []);
    assert.deepEqual(await d.listAliases('example.com'), []);
    assert.equal((await d.getMailbox('keep.example', 'joe'))?.local, 'joe');
    // The name is free again, with nothing left over.
    await d.addDomain({ name: 'example.com', account: acct });
    assert.equal(await d.countMailboxes('example.com'), 0);
  });

  withDir('concurrent changes all land (transactions do not interleave)', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct, limits: { maxMailboxes: 10 } });
    const results = await Promise.allSettled(
      Array.from({ length: 15 }, (_, i) => d.addMailbox({ domain: 'example.com', local: `u${i}`, passwordHash: '' })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 10);
    assert.equal(await d.countMailboxes('example.com'), 10);
  });

  withDir('domain administrators: a mailbox of any domain, per domain; refused for unknown mailboxes', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    await d.addDomain({ name: 'other.example', account: acct });
    await d.addAliasDomain('example.net', 'example.com');
    await d.addMailbox({ domain: 'example.com', local: 'ann', passwordHash: '' });
    assert.equal(await d.addDomainAdmin('example.com', 'Ann@Example.NET'), true);
    assert.equal(await d.addDomainAdmin('example.com', 'ann@example.com'), false);
    assert.equal(await d.addDomainAdmin('other.example', 'ann@example.com'), true);
    assert.deepEqual(await d.adminDomainsOf('ann@example.com'), ['example.com', 'other.example']);
    assert.deepEqual(
      (await d.listDomainAdmins()).map((a) => `${a.domain} ${a.login}`),
      ['example.com ann@example.com', 'other.example ann@example.com'],
    );
    await assert.rejects(d.addDomainAdmin('example.com', 'nobody@example.com'), /no mailbox nobody@example\.com/);
    await assert.rejects(d.addDomainAdmin('nosuch.example', 'ann@example.com'), /no domain nosuch\.example/);
    await assert.rejects(d.addDomainAdmin('example.com', 'not-a-login'), DirectoryError);
    assert.equal(await d.removeDomainAdmin('other.example', 'ann@example.com'), true);
    assert.equal(await d.removeDomainAdmin('other.example', 'ann@example.com'), false);
    assert.deepEqual(await d.adminDomainsOf('ann@example.com'), ['example.com']);
  });

  withDir('sessions: kept until they expire, ended by login, and gone with their mailbox or domain', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    await d.addDomain({ name: 'other.example', account: acct });
    await d.addMailbox({ domain: 'example.com', local: 'ann', passwordHash: '' });
    await d.addMailbox({ domain: 'example.com', local: 'bob', passwordHash: '' });
    await d.addDomainAdmin('other.example', 'bob@example.com');
    const t0 = new Date(1_700_000_000_000);
    const s = { login: 'ann@example.com', csrf: 'c1', created: t0, expires: new Date(t0.getTime() + 1000) };
    await d.addSession({ ...s, id: 'a1' });
    await d.addSession({ ...s, id: 'a2', expires: new Date(t0.getTime() + 5000) });
    await d.addSession({ ...s, id: 'b1', login: 'bob@example.com' });
    assert.deepEqual(await d.getSession('a1', t0), { ...s, id: 'a1' });
    assert.equal(await d.getSession('a1', new Date(t0.getTime() + 1000)), null, 'expired');
    assert.equal(await d.deleteSessions({ expiredAt: new Date(t0.getTime() + 1000) }), 2);
    assert.equal((await d.getSession('a2', t0))?.login, 'ann@example.com');
    assert.equal(await d.deleteSession('a2'), true);
    assert.equal(await d.deleteSession('a2'), false);
    await d.addSession({ ...s, id: 'a3', expires: new Date(t0.getTime() + 5000) });
    await d.addSession({ ...s, id: 'a5', expires: new Date(t0.getTime() + 5000) });
    assert.equal(await d.deleteSessions({ login: 'ann@example.com', except: 'a5' }), 1, 'all but the one kept');
    assert.equal((await d.getSession('a5', t0))?.id, 'a5');
    await d.addSession({ ...s, id: 'a3', expires: new Date(t0.getTime() + 5000) });
    assert.equal(await d.deleteSessions({ login: 'ANN@example.com' }), 2);
    await d.addSession({ ...s, id: 'b2', login: 'bob@example.com', expires: new Date(t0.getTime() + 5000) });
    await d.deleteMailbox('example.com', 'bob');
    assert.equal(await d.getSession('b2', t0), null, 'the mailbox went, its session with it');
    assert.deepEqual(await d.listDomainAdmins('other.example'), [], 'and its administrator rows');
    await d.addSession({ ...s, id: 'a4', expires: new Date(t0.getTime() + 5000) });
    await d.addDomainAdmin('other.example', 'ann@example.com');
    await d.deleteDomain('example.com');
    assert.equal(await d.getSession('a4', t0), null);
    assert.deepEqual(await d.listDomainAdmins(), []);
  });

  withDir('vacation: stored, checked and cleared (migration 5)', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    const m = await d.addMailbox({ domain: 'example.com', local: 'joe', passwordHash: '' });
    assert.equal(m.vacation, null);
    const v = { subject: 'Away – back Monday', body: 'I read mail on Monday.\n', days: 7 };
    assert.deepEqual((await d.updateMailbox('example.com', 'joe', { vacation: v })).vacation, v);
    assert.deepEqual((await d.getMailbox('example.com', 'joe'))?.vacation, v);
    await assert.rejects(d.updateMailbox('example.com', 'joe', { vacation: { ...v, days: 0 } }), DirectoryError);
    await assert.rejects(
      d.updateMailbox('example.com', 'joe', { vacation: { ...v, subject: 'a\nb' } }),
      DirectoryError,
    );
    await assert.rejects(d.updateMailbox('example.com', 'joe', { vacation: { ...v, body: ' ' } }), DirectoryError);
    assert.equal((await d.updateMailbox('example.com', 'joe', { vacation: null })).vacation, null);
  });

  withDir('spam folder: stored, checked and cleared (migration 8)', async (d) => {
    await d.addDomain({ name: 'example.com', account: acct });
    const m = await d.addMailbox({ domain: 'example.com', local: 'joe', passwordHash: '' });
    assert.equal(m.spamFolder, null);
    assert.equal((await d.updateMailbox('example.com', 'joe', { spamFolder: 'Junk' })).spamFolder, 'Junk');
    // another change keeps it
    assert.equal((await d.updateMailbox('example.com', 'joe', { realName: 'Joe' })).spamFolder, 'Junk');
    assert.equal((await d.getMailbox('example.com', 'joe'))?.spamFolder, 'Junk');
    await assert.rejects(d.updateMailbox('example.com', 'joe', { spamFolder: '../x' }), DirectoryError);
    assert.equal((await d.updateMailbox('example.com', 'joe', { spamFolder: null })).spamFolder, null);
  });

  withDir('held domains: add, show, replace, list, remove; names of mailbox and alias domains refused', async (d) => {
    const h = await d.putHeld(
      {
        name: 'Some.Example.COM',
        host: '192.0.2.7:2525',
        everySeconds: 120,
        etrn: true,
        atrnLogin: 'Cust@isp.example',
        atrnSecret: 'cram-secret-1',
        autoturn: ['192.0.2.7', '2001:db8::/32'],
        account: acct,
      },
      false,
    );
    assert.equal(h.name, 'some.example.com');
    assert.equal(h.atrnLogin, 'cust@isp.example');
    assert.deepEqual(h.autoturn, ['192.0.2.7/32', '2001:db8::/32']);
    assert.deepEqual(await d.getHeld('SOME.example.com'), h);
    assert.equal(h.atrnSecret, 'cram-secret-1');
    const base = {
      host: 'x.example',
      everySeconds: 60,
      etrn: false,
      atrnLogin: '',
      atrnSecret: '',
      autoturn: [],
      account: acct,
    };
    await assert.rejects(d.putHeld({ ...base, name: 'b.example', atrnSecret: 'no login' }, false), DirectoryError);
    await assert.rejects(d.putHeld({ ...base, name: 'some.example.com' }, false), /already held/);
    const changed = await d.putHeld({ ...base, name: 'some.example.com' }, true);
    assert.equal(changed.host, 'x.example');
    assert.equal(changed.created.getTime(), h.created.getTime());
    await assert.rejects(d.putHeld({ ...base, name: 'b.example', autoturn: ['300.1.1.1'] }, false), DirectoryError);
    await assert.rejects(d.putHeld({ ...base, name: 'b.example', everySeconds: 0 }, false), DirectoryError);
    await assert.rejects(d.putHeld({ ...base, name: 'b.example', atrnLogin: 'nologin' }, false), DirectoryError);
    await d.addDomain({ name: 'mail.example', account: acct });
    await assert.rejects(d.putHeld({ ...base, name: 'mail.example' }, false), /mailbox domain/);
    await assert.rejects(d.addDomain({ name: 'some.example.com', account: acct }), /held domain/);
    await d.putHeld({ ...base, name: 'a.example' }, false);
    assert.deepEqual(
      (await d.listHeld()).map((x) => x.name),
      ['a.example', 'some.example.com'],
    );
    assert.equal(await d.deleteHeld('a.example'), true);
    assert.equal(await d.deleteHeld('a.example'), false);
    assert.equal(await d.getHeld('a.example'), null);
  });

  withDir(
    'lookupAddress (one statement) answers as the single lookups do, on random directories (property)',
    async (d) => {
      const domains = ['a.example', 'b.example'] as const;
      const locals = ['joe', 'joe-x', 'joe-x-y', 'ann', 'info', 'postmaster'] as const;
      const policies = [
        { kind: 'bounce-no-mailbox' },
        { kind: 'delete' },
        { kind: 'forward', address: 'catch@other.example' },
        { kind: 'mailbox', local: 'postmaster' },
      ] as const;
      const content = fc.record({
        doms: fc.subarray([...domains], { minLength: 1 }),
        policy: fc.constantFrom(...policies),
        quota: fc.option(fc.nat(10_000), { nil: null }),
        aliasDomains: fc.subarray(['x.example', '.a.example', '.example']),
        mailboxes: fc.uniqueArray(fc.tuple(fc.constantFrom(...domains), fc.constantFrom(...locals), fc.boolean()), {
          maxLength: 6,
          selector: ([dom, l]) => `${dom} ${l}`,
        }),
        aliases: fc.uniqueArray(
          fc.tuple(
            fc.constantFrom(...domains),
            fc.constantFrom(...locals),
            fc.uniqueArray(fc.constantFrom('t1@o.example', '&t2@o.example', '|cat', './joe/Maildir/'), {
              minLength: 1,
            }),
          ),
          { maxLength: 4, selector: ([dom, l]) => `${dom} ${l}` },
        ),
      });
      const queries = fc.array(
        fc.tuple(
          fc.constantFrom('a.example', 'B.Example', 'x.example', 'sub.a.example', 'example', 'nosuch.example'),
          fc.constantFrom(...locals, 'JOE', 'joe-z', 'joe-', '', 'info-x', 'nobody'),
        ),
        { minLength: 1, maxLength: 8 },
      );
      const plain = (r: AddressLookup | null): unknown =>
        r && {
          domain: { name: r.domain.name, policy: r.domain.policy, quotaBytes: r.domain.limits.quotaBytes },
          alias: r.alias && r.alias.targets,
          mailbox: r.mailbox,
        };
      // the cases by hand first: the mailbox itself before the one before the dash, an alias wins, an alias domain
      await d.addDomain({ name: 'a.example', account: acct, limits: { quotaBytes: 7 } });
      await d.addAliasDomain('x.example', 'a.example');
      for (const local of ['joe', 'joe-x', 'info'])
        await d.addMailbox({ domain: 'a.example', local, passwordHash: '' });
      await d.addAlias('a.example', 'info', ['|cat', 't1@o.example']);
      const mine = async (dom: string, local: string): Promise<unknown> => {
        const r = await d.lookupAddress(dom, local);
        return r && [r.domain.name, r.domain.limits.quotaBytes, r.alias?.targets ?? null, r.mailbox?.local ?? null];
      };
      assert.deepEqual(await mine('X.example', 'Joe-X'), ['a.example', 7, null, 'joe-x']);
      assert.deepEqual(await mine('a.example', 'joe-y-z'), ['a.example', 7, null, 'joe']);
      assert.deepEqual(await mine('a.example', 'info'), ['a.example', 7, ['|cat', 't1@o.example'], null]);
      assert.deepEqual(await mine('a.example', 'nobody'), ['a.example', 7, null, null]);
      assert.equal(await mine('nosuch.example', 'joe'), null);
      await fc.assert(
        fc.asyncProperty(content, queries, async (c, qs) => {
          for (const x of await d.listDomains()) await d.deleteDomain(x.name);
          for (const name of c.doms)
            await d.addDomain({ name, account: acct, policy: c.policy, limits: { quotaBytes: c.quota } });
          const target = c.doms[0] ?? 'a.example';
          for (const a of c.aliasDomains) await d.addAliasDomain(a, target);
          for (const [dom, local, fwd] of c.mailboxes) {
            if (!c.doms.includes(dom)) continue;
            await d.addMailbox({ domain: dom, local, passwordHash: '', quotaBytes: local.length * 100 });
            if (fwd) await d.updateMailbox(dom, local, { forward: ['f@o.example'], keepCopy: true });
          }
          for (const [dom, local, targets] of c.aliases)
            if (c.doms.includes(dom)) await d.addAlias(dom, local, targets);
          for (const [dom, local] of qs) {
            const one = await d.lookupAddress(dom, local);
            assert.deepEqual(plain(one), plain(await lookupAddressByParts(d, dom, local)), `${local}@${dom}`);
          }
        }),
        { numRuns: 40 },
      );
    },
  );
}
