// The one decision, the changes it guards and the web requests, on a real SQLite directory in a fresh mail root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDomain, createMailbox, openDirectory, type Ctx } from '../directory/index.js';
import { AccessDenied, perform, principalOf, refusal, serveWeb, type Principal, type WebAnswer } from './index.js';

const acct = { user: 'nobody', uid: 65534, gid: 65534 };

async function fixture(body: (ctx: Ctx) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quail-access-'));
  const dir = await openDirectory({ root });
  const ctx = { root, dir };
  try {
    await createDomain(ctx, { name: 'a.example', account: acct });
    await createDomain(ctx, { name: 'b.example', account: acct });
    await dir.addAliasDomain('alias-a.example', 'a.example');
    for (const address of ['ann@a.example', 'joe@a.example', 'bea@b.example'])
      await createMailbox(ctx, { address, password: 'secret' });
    await createMailbox(ctx, { address: 'root@b.example', password: 'secret', flags: ['system-admin'] });
    await createMailbox(ctx, { address: 'flag@b.example', password: 'secret', flags: ['domain-admin'] });
    await dir.addDomainAdmin('a.example', 'ann@a.example');
    await body(ctx);
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
}

const login = (login: string, domains: string[] = [], systemAdmin = false): Principal => ({
  kind: 'login',
  login,
  systemAdmin,
  domains,
});

void test('refusal: the decision table of the three roles', () => {
  const sys: Principal = { kind: 'system' };
  const ann = login('ann@a.example', ['a.example']);
  const joe = login('joe@a.example');
  const root = login('root@b.example', [], true);
  const cases: Array<[Principal, Parameters<typeof refusal>[1], boolean]> = [
    [sys, { scope: 'system' }, true],
    [root, { scope: 'system' }, true],
    [root, { scope: 'domain', domain: 'a.example' }, true],
    [ann, { scope: 'system' }, false],
    [ann, { scope: 'domain', domain: 'a.example' }, true],
    [ann, { scope: 'domain', domain: 'b.example' }, false],
    [ann, { scope: 'mailbox', address: 'joe@a.example' }, true],
    [ann, { scope: 'mailbox', address: 'bea@b.example' }, false],
    [joe, { scope: 'mailbox', address: 'joe@a.example' }, true],
    [joe, { scope: 'mailbox', address: 'ann@a.example' }, false],
    [joe, { scope: 'domain', domain: 'a.example' }, false],
  ];
  for (const [p, need, allowed] of cases)
    assert.equal(refusal(p, need) === undefined, allowed, `${JSON.stringify(p)} ${JSON.stringify(need)}`);
  assert.match(
    refusal(ann, { scope: 'domain', domain: 'b.example' }) ?? '',
    /quail domain admin add b\.example ann@a\.example/,
  );
});

void test('principalOf: roles from domain_admins and the domain-admin and system-admin flags', async () => {
  await fixture(async ({ dir }) => {
    assert.deepEqual(await principalOf(dir, 'ann@a.example'), login('ann@a.example', ['a.example']));
    assert.deepEqual(await principalOf(dir, 'flag@b.example'), login('flag@b.example', ['b.example']));
    assert.deepEqual(await principalOf(dir, 'root@b.example'), login('root@b.example', [], true));
    assert.equal(await principalOf(dir, 'gone@a.example'), null);
  });
});

void test('perform: a domain administrator changes its domain (alias domains too), never another one or a role', async () => {
  await fixture(async (ctx) => {
    const ann = (await principalOf(ctx.dir, 'ann@a.example')) as Principal;
    assert.equal(
      await perform(ctx, ann, { op: 'mailbox.add', address: 'new@alias-a.example', password: 'pw' }),
      'added new@a.example',
    );
    assert.ok(existsSync(join(ctx.root, 'domains/a.example/new/Maildir/new')), 'the Maildir was made');
    await perform(ctx, ann, { op: 'mailbox.quota', address: 'new@a.example', quotaBytes: 1000 });
    assert.equal((await ctx.dir.getMailbox('a.example', 'new'))?.quotaBytes, 1000);
    await perform(ctx, ann, { op: 'alias.add', address: 'info@a.example', target: 'joe@a.example' });
    await perform(ctx, ann, { op: 'domain.catchall', domain: 'a.example', policy: 'mailbox:joe' });
    assert.deepEqual((await ctx.dir.getDomain('a.example'))?.policy, { kind: 'mailbox', local: 'joe' });
    for (const c of [
      { op: 'mailbox.add', address: 'x@b.example', password: 'pw' },
      { op: 'mailbox.remove', address: 'bea@b.example' },
      { op: 'mailbox.password', address: 'bea@b.example', password: 'pw' },
      { op: 'domain.catchall', domain: 'b.example', policy: 'delete' },
      { op: 'mailbox.add', address: 'boss@a.example', password: 'pw', flags: ['system-admin'] },
      { op: 'admin.add', domain: 'a.example', login: 'joe@a.example' },
      { op: 'mailbox.remove', address: 'ann@a.example' },
    ] as const)
      await assert.rejects(perform(ctx, ann, c), AccessDenied, JSON.stringify(c));
    assert.equal(await ctx.dir.getMailbox('b.example', 'x'), null);
    assert.equal(await ctx.dir.getMailbox('a.example', 'boss'), null);
    // a user: its own password and forward only
    const joe = (await principalOf(ctx.dir, 'joe@a.example')) as Principal;
    await perform(ctx, joe, {
      op: 'mailbox.forward',
      address: 'joe@a.example',
      targets: ['joe@elsewhere.example'],
      keepCopy: true,
    });
    assert.deepEqual((await ctx.dir.getMailbox('a.example', 'joe'))?.forward, ['joe@elsewhere.example']);
    await assert.rejects(
      perform(ctx, joe, { op: 'mailbox.quota', address: 'joe@a.example', quotaBytes: null }),
      AccessDenied,
    );
    // the system administrator (the CLI) makes domain administrators
    assert.match(
      await perform(ctx, { kind: 'system' }, { op: 'admin.add', domain: 'b.example', login: 'joe@a.example' }),
      /administers b\.example/,
    );
    assert.deepEqual(await principalOf(ctx.dir, 'joe@a.example'), login('joe@a.example', ['b.example']));
  });
});

const fail = (a: WebAnswer): { status: number; error: string } => {
  assert.equal(a.ok, false, JSON.stringify(a));
  return a.ok ? { status: 0, error: '' } : a;
};

void test('serveWeb: login makes a session, a change needs its CSRF token, another domain is 403, junk is 400', async () => {
  await fixture(async (ctx) => {
    assert.equal(fail(await serveWeb(ctx, { op: 'login', login: 'ann@a.example', password: 'wrong' })).status, 401);
    const ok = await serveWeb(ctx, { op: 'login', login: 'ANN@alias-a.example', password: 'secret' });
    assert.ok(ok.ok && ok.token !== undefined && ok.who !== undefined);
    const { token } = ok;
    const { csrf, login: who } = ok.who;
    assert.equal(who, 'ann@a.example');
    const page = await serveWeb(ctx, { op: 'view', token, view: { view: 'domain', domain: 'a.example' } });
    assert.ok(page.ok && page.data?.view === 'domain');
    assert.deepEqual(
      page.data.mailboxes.map((m) => m.address),
      ['ann@a.example', 'joe@a.example'],
    );
    assert.equal(
      fail(await serveWeb(ctx, { op: 'view', token, view: { view: 'domain', domain: 'b.example' } })).status,
      403,
    );
    const add = { op: 'mailbox.add', address: 'web@a.example', password: 'pw' };
    assert.equal(fail(await serveWeb(ctx, { op: 'change', token, csrf: 'forged', change: add })).status, 403);
    assert.equal(await ctx.dir.getMailbox('a.example', 'web'), null, 'nothing changed without the token');
    const done = await serveWeb(ctx, { op: 'change', token, csrf, change: add });
    assert.ok(done.ok && done.done === 'added web@a.example');
    assert.equal(fail(await serveWeb(ctx, { op: 'change', token, csrf, change: add })).status, 400, 'it exists');
    for (const junk of [
      null,
      'x',
      { op: 'nope' },
      { op: 'view', token: 1 },
      { op: 'change', token, csrf, change: { op: 'mailbox.quota', address: 'a@a.example', quotaBytes: -1 } },
    ])
      assert.equal(fail(await serveWeb(ctx, junk)).status, 400, JSON.stringify(junk));
    assert.equal(fail(await serveWeb(ctx, { op: 'view', token: 'made-up', view: { view: 'home' } })).status, 401);
    // the session expires, and ends at logout
    const later = new Date(Date.now() + 9 * 3600_000);
    assert.equal(fail(await serveWeb(ctx, { op: 'view', token, view: { view: 'home' } }, later)).status, 401);
    assert.ok((await serveWeb(ctx, { op: 'logout', token })).ok);
    assert.equal(fail(await serveWeb(ctx, { op: 'view', token, view: { view: 'home' } })).status, 401);
  });
});

void test('serveWeb: a password set by an administrator logs the mailbox out; no-webmail cannot log in', async () => {
  await fixture(async (ctx) => {
    const joe = await serveWeb(ctx, { op: 'login', login: 'joe@a.example', password: 'secret' });
    const ann = await serveWeb(ctx, { op: 'login', login: 'ann@a.example', password: 'secret' });
    assert.ok(joe.ok && joe.token !== undefined && ann.ok && ann.token !== undefined && ann.who !== undefined);
    const set = await serveWeb(ctx, {
      op: 'change',
      token: ann.token,
      csrf: ann.who.csrf,
      change: { op: 'mailbox.password', address: 'joe@a.example', password: 'new one' },
    });
    assert.ok(set.ok);
    assert.equal(fail(await serveWeb(ctx, { op: 'view', token: joe.token, view: { view: 'self' } })).status, 401);
    assert.ok((await serveWeb(ctx, { op: 'login', login: 'joe@a.example', password: 'new one' })).ok);
    await ctx.dir.updateMailbox('a.example', 'joe', { flags: ['no-webmail'] });
    assert.equal(fail(await serveWeb(ctx, { op: 'login', login: 'joe@a.example', password: 'new one' })).status, 401);
  });
});

void test('perform: taking over a mailbox needs its roles (a domain administrator cannot climb through a password)', async () => {
  await fixture(async (ctx) => {
    await ctx.dir.addDomainAdmin('b.example', 'joe@a.example');
    const ann = (await principalOf(ctx.dir, 'ann@a.example')) as Principal;
    const flag = (await principalOf(ctx.dir, 'flag@b.example')) as Principal;
    // joe administers b.example: ann (a.example only) may not set his password, forward, services, or remove him
    for (const c of [
      { op: 'mailbox.password', address: 'joe@a.example', password: 'mine now' },
      { op: 'mailbox.forward', address: 'joe@a.example', targets: ['ann@a.example'], keepCopy: false },
      { op: 'mailbox.services', address: 'joe@a.example', pop: true, imap: true, smtp: true },
      { op: 'mailbox.remove', address: 'joe@a.example' },
    ] as const)
      await assert.rejects(perform(ctx, ann, c), /not an administrator of b\.example/, c.op);
    // root@b.example is a system administrator: b.example's administrator may not take it over
    await assert.rejects(
      perform(ctx, flag, { op: 'mailbox.password', address: 'root@b.example', password: 'mine now' }),
      /not a system administrator/,
    );
    // a plain mailbox of its domain: allowed; and joe may still change his own password
    assert.match(
      await perform(ctx, flag, { op: 'mailbox.password', address: 'bea@b.example', password: 'x' }),
      /changed/,
    );
    const joe = (await principalOf(ctx.dir, 'joe@a.example')) as Principal;
    assert.match(
      await perform(ctx, joe, { op: 'mailbox.password', address: 'joe@a.example', password: 'y' }),
      /changed/,
    );
  });
});

void test('perform: spam folder and autoresponders — the mailbox or its domain administrator; the admins page only for a system administrator', async () => {
  await fixture(async (ctx) => {
    const ann = await principalOf(ctx.dir, 'ann@a.example');
    const joe = await principalOf(ctx.dir, 'joe@a.example');
    const root = await principalOf(ctx.dir, 'root@b.example');
    assert.ok(ann && joe && root);
    // a user's own spam folder, and its domain administrator's; never another user's or another domain's
    assert.match(
      await perform(ctx, joe, { op: 'mailbox.spam', address: 'joe@a.example', folder: 'Junk' }),
      /goes to the folder Junk/,
    );
    assert.equal((await ctx.dir.getMailbox('a.example', 'joe'))?.spamFolder, 'Junk');
    await perform(ctx, ann, { op: 'mailbox.spam', address: 'joe@alias-a.example', folder: null });
    assert.equal((await ctx.dir.getMailbox('a.example', 'joe'))?.spamFolder, null);
    await assert.rejects(
      perform(ctx, joe, { op: 'mailbox.spam', address: 'ann@a.example', folder: 'Junk' }),
      AccessDenied,
    );
    await assert.rejects(
      perform(ctx, ann, { op: 'mailbox.spam', address: 'bea@b.example', folder: 'Junk' }),
      AccessDenied,
    );
    await assert.rejects(
      perform(ctx, joe, { op: 'mailbox.spam', address: 'joe@a.example', folder: '../x' }),
      /not a folder name/,
    );
    // a domain administrator sets and clears the autoresponder of a mailbox of its domain, not of another domain
    const vacation = { subject: '', body: 'away', days: 3 };
    assert.match(
      await perform(ctx, ann, { op: 'mailbox.vacation', address: 'joe@a.example', vacation }),
      /vacation reply on for joe@a\.example/,
    );
    assert.deepEqual((await ctx.dir.getMailbox('a.example', 'joe'))?.vacation, vacation);
    await perform(ctx, ann, { op: 'mailbox.vacation', address: 'joe@a.example', vacation: null });
    assert.equal((await ctx.dir.getMailbox('a.example', 'joe'))?.vacation, null);
    await assert.rejects(
      perform(ctx, ann, { op: 'mailbox.vacation', address: 'bea@b.example', vacation }),
      AccessDenied,
    );
    // the page of domain administrators: a system administrator's only
    const token = async (address: string): Promise<string> => {
      const a = await serveWeb(ctx, { op: 'login', login: address, password: 'secret' });
      assert.ok(a.ok && a.token !== undefined);
      return a.token;
    };
    const sys = await serveWeb(ctx, { op: 'view', token: await token('root@b.example'), view: { view: 'admins' } });
    assert.ok(sys.ok && sys.data?.view === 'admins');
    assert.deepEqual(sys.data.admins, [{ domain: 'a.example', login: 'ann@a.example' }]);
    assert.deepEqual(sys.data.domains, ['a.example', 'b.example']);
    const denied = await serveWeb(ctx, { op: 'view', token: await token('ann@a.example'), view: { view: 'admins' } });
    assert.deepEqual([denied.ok, denied.ok ? 0 : denied.status], [false, 403]);
    // a spam change from the web process is checked field by field
    const bad = await serveWeb(ctx, {
      op: 'change',
      token: await token('joe@a.example'),
      csrf: 'x',
      change: { op: 'mailbox.spam', address: 'joe@a.example', folder: 42 },
    });
    assert.deepEqual([bad.ok, bad.ok ? 0 : bad.status], [false, 400]);
  });
});

void test('perform: program and path targets need a system administrator; the CLI keeps them, and aliases over mailboxes', async () => {
  await fixture(async (ctx) => {
    const ann = (await principalOf(ctx.dir, 'ann@a.example')) as Principal;
    const joe = (await principalOf(ctx.dir, 'joe@a.example')) as Principal;
    const root = (await principalOf(ctx.dir, 'root@b.example')) as Principal;
    for (const target of ['|id', ' |id', '&|id', '/srv/x/Maildir/', './../b.example/bea/Maildir/', '/tmp/mbox'])
      await assert.rejects(
        perform(ctx, ann, { op: 'alias.add', address: 'pwn@a.example', target }),
        (e: Error) => e instanceof AccessDenied && /only a system administrator may set one/.test(e.message),
        target,
      );
    await assert.rejects(
      perform(ctx, joe, {
        op: 'mailbox.forward',
        address: 'joe@a.example',
        targets: ['x@y.example', '|id'],
        keepCopy: false,
      }),
      /"\|id" is a program or a file path/,
    );
    assert.equal(await ctx.dir.getAlias('a.example', 'pwn'), null);
    assert.deepEqual((await ctx.dir.getMailbox('a.example', 'joe'))?.forward, []);
    await perform(ctx, ann, { op: 'alias.add', address: 'fw@a.example', target: '&joe@a.example' });
    await perform(ctx, root, { op: 'alias.add', address: 'prog@a.example', target: '|true' });
    await perform(ctx, { kind: 'system' }, { op: 'alias.add', address: 'box@a.example', target: './joe/Maildir/' });
    // an alias named as a mailbox would take its mail: refused on the web (even to a system administrator), not
    // for the CLI's principal (quail alias add keeps qmail's .qmail-NAME meaning)
    for (const p of [ann, root])
      await assert.rejects(
        perform(ctx, p, { op: 'alias.add', address: 'joe@alias-a.example', target: 'ann@a.example' }),
        /joe@a\.example is a mailbox: an alias of that name would take all its mail/,
      );
    await perform(ctx, { kind: 'system' }, { op: 'alias.add', address: 'joe@a.example', target: 'ann@a.example' });
    assert.deepEqual((await ctx.dir.getAlias('a.example', 'joe'))?.targets, ['ann@a.example']);
  });
});

void test('perform: every change of a mailbox needs its roles; no-password-change keeps the user from its password', async () => {
  await fixture(async (ctx) => {
    await createMailbox(ctx, { address: 'boss@a.example', password: 'secret', flags: ['system-admin'] });
    const ann = (await principalOf(ctx.dir, 'ann@a.example')) as Principal;
    for (const c of [
      { op: 'mailbox.quota', address: 'boss@a.example', quotaBytes: 1 },
      { op: 'mailbox.vacation', address: 'boss@a.example', vacation: { subject: '', body: 'x', days: 1 } },
      { op: 'mailbox.spam', address: 'boss@a.example', folder: 'Junk' },
      { op: 'alias.add', address: 'boss-x@a.example', target: 'ann@a.example' },
    ] as const)
      await assert.rejects(perform(ctx, ann, c), /not a system administrator/, c.op);
    const boss = await ctx.dir.getMailbox('a.example', 'boss');
    assert.deepEqual([boss?.quotaBytes, boss?.vacation, boss?.spamFolder], [null, null, null]);
    assert.equal(await ctx.dir.getAlias('a.example', 'boss-x'), null);
    // joe is a plain mailbox: his extensions are his domain's administrator's to alias
    await perform(ctx, ann, { op: 'alias.add', address: 'joe-x@a.example', target: 'ann@a.example' });
    await ctx.dir.updateMailbox('a.example', 'joe', { flags: ['no-password-change'] });
    const joe = (await principalOf(ctx.dir, 'joe@a.example')) as Principal;
    await assert.rejects(
      perform(ctx, joe, { op: 'mailbox.password', address: 'joe@a.example', password: 'x' }),
      /the password of joe@a\.example may not be changed by its user \(the mailbox has the no-password-change flag\)/,
    );
    assert.match(
      await perform(ctx, ann, { op: 'mailbox.password', address: 'joe@a.example', password: 'x' }),
      /changed/,
    );
  });
});

void test("serveWeb: a new password of its own ends the login's other sessions, not this one; no-webmail ends a session", async () => {
  await fixture(async (ctx) => {
    const logIn = async (): Promise<{ token: string; csrf: string }> => {
      const a = await serveWeb(ctx, { op: 'login', login: 'joe@a.example', password: 'secret' });
      assert.ok(a.ok && a.token !== undefined && a.who !== undefined);
      return { token: a.token, csrf: a.who.csrf };
    };
    const one = await logIn();
    const two = await logIn();
    const set = await serveWeb(ctx, {
      op: 'change',
      ...one,
      change: { op: 'mailbox.password', address: 'joe@a.example', password: 'secret' },
    });
    assert.ok(set.ok);
    assert.ok((await serveWeb(ctx, { op: 'view', token: one.token, view: { view: 'self' } })).ok, 'this one stays');
    assert.equal(fail(await serveWeb(ctx, { op: 'view', token: two.token, view: { view: 'self' } })).status, 401);
    await ctx.dir.updateMailbox('a.example', 'joe', { flags: ['no-webmail'] });
    assert.equal(fail(await serveWeb(ctx, { op: 'view', token: one.token, view: { view: 'self' } })).status, 401);
    const change = { op: 'mailbox.spam', address: 'joe@a.example', folder: 'Junk' };
    assert.equal(fail(await serveWeb(ctx, { op: 'change', ...one, change })).status, 401);
    await ctx.dir.updateMailbox('a.example', 'joe', { flags: [] });
    assert.equal(
      fail(await serveWeb(ctx, { op: 'view', token: one.token, view: { view: 'self' } })).status,
      401,
      'the session was ended, not only refused',
    );
    assert.equal((await ctx.dir.getMailbox('a.example', 'joe'))?.spamFolder, null);
  });
});
