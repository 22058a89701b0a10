// What a login may not do through the web admin, over real HTTP (webServer on 127.0.0.1, fetch, src/access's serveWeb
// and a real SQLite directory): program and path targets, another mailbox's mail through an alias, a higher-rights
// mailbox's settings, the no-password-change and no-webmail flags on every request, the sessions a new password ends,
// and a form that cannot be read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveWeb } from '../access/index.js';
import { createDomain, createMailbox, openDirectory, type Ctx } from '../directory/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { createWebApp, webServer } from './index.js';
import { cookieJar } from '../../test/support/cookies.js';

const acct = { user: 'nobody', uid: 65534, gid: 65534 };

interface Client {
  get(path: string): Promise<Response>;
  post(path: string, form: Record<string, string>): Promise<Response>;
  /** Logs in; the CSRF token of the home page after. */
  logIn(login: string, password: string): Promise<string>;
  /** The flash message the last redirect set (what the page will say). */
  flash(): string;
}

interface World {
  readonly ctx: Ctx;
  readonly base: string;
  readonly logs: Array<{ event: string; fields: Record<string, string | number> }>;
  readonly client: () => Client;
}

async function world(body: (w: World) => Promise<void>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'quail-web-rights-'));
  const dir = await openDirectory({ root });
  const ctx = { root, dir };
  const logs: World['logs'] = [];
  const app = createWebApp({
    backend: (req) => serveWeb(ctx, req),
    secure: false,
    throttle: new LoginThrottle(),
    clientIp: () => '127.0.0.9',
    log: (event, fields) => logs.push({ event, fields }),
    sleep: () => Promise.resolve(),
  });
  const srv = webServer(app);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const client = (): Client => {
    const jar = cookieJar();
    const { cookies, keep } = jar;
    const cookie = jar.header;
    const get = async (path: string): Promise<Response> =>
      keep(await fetch(base + path, { headers: { cookie: cookie() }, redirect: 'manual' }));
    const post = async (path: string, form: Record<string, string>): Promise<Response> =>
      keep(
        await fetch(base + path, {
          method: 'POST',
          headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(form).toString(),
          redirect: 'manual',
        }),
      );
    return {
      get,
      post,
      logIn: async (login, password) => {
        const form = await (await get('/login')).text();
        const pre = /name="pre" value="([^"]+)"/.exec(form)?.[1] ?? '';
        const r = await post('/login', { pre, login, password });
        assert.equal(r.headers.get('location'), '/', `${login} logged in`);
        return /name="csrf" value="([^"]+)"/.exec(await (await get('/')).text())?.[1] ?? '';
      },
      flash: () => decodeURIComponent(decodeURIComponent(cookies.get('quail-flash') ?? '').slice(1)),
    };
  };
  try {
    await createDomain(ctx, { name: 'a.test', account: acct });
    await createDomain(ctx, { name: 'b.test', account: acct });
    await createMailbox(ctx, { address: 'ann@a.test', password: 'secret' });
    await createMailbox(ctx, { address: 'joe@a.test', password: 'secret' });
    await createMailbox(ctx, { address: 'root@a.test', password: 'secret', flags: ['system-admin'] });
    await createMailbox(ctx, { address: 'carol@b.test', password: 'secret' });
    await dir.addDomainAdmin('a.test', 'ann@a.test');
    await body({ ctx, base, logs, client });
  } finally {
    srv.closeAllConnections();
    srv.close();
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
}

void test('web rights: a domain administrator may alias only to addresses; program and path targets are for a system administrator', async () => {
  await world(async ({ ctx, client }) => {
    const ann = client();
    const csrf = await ann.logIn('ann@a.test', 'secret');
    const pem = join(ctx.root, 'control/servercert.pem');
    for (const target of [
      `|id > /tmp/x; cat ${pem} >> /tmp/x`,
      ` |id`,
      `${ctx.root}/domains/b.test/carol/Maildir/`,
      './../b.test/carol/Maildir/',
      `${ctx.root}/mbox`,
    ]) {
      const r = await ann.post('/domain/a.test/alias-add', { csrf, local: 'pwn', target });
      assert.equal(r.status, 403, target);
      assert.match(await r.text(), /only a system administrator may set one; give an address/, target);
      assert.equal(await ctx.dir.getAlias('a.test', 'pwn'), null, `${target}: no alias made`);
    }
    // an address is fine
    const ok = await ann.post('/domain/a.test/alias-add', { csrf, local: 'info', target: 'joe@a.test' });
    assert.equal(ok.status, 303);
    assert.deepEqual((await ctx.dir.getAlias('a.test', 'info'))?.targets, ['joe@a.test']);
    // a user's own forwarding: addresses only, said clearly
    const joe = client();
    const jc = await joe.logIn('joe@a.test', 'secret');
    for (const targets of ['|id', '/tmp/x/Maildir/', 'joe@else.test ./Maildir/']) {
      const r = await joe.post('/me/forward', { csrf: jc, self: 'joe@a.test', targets });
      assert.equal(r.status, 403, targets);
      assert.match(await r.text(), /is a program or a file path/, targets);
    }
    assert.deepEqual((await ctx.dir.getMailbox('a.test', 'joe'))?.forward, [], 'nothing forwarded');
    // the system administrator (on the web too) may
    const root = client();
    const rc = await root.logIn('root@a.test', 'secret');
    assert.equal(
      (await root.post('/domain/a.test/alias-add', { csrf: rc, local: 'prog', target: '|true' })).status,
      303,
    );
    assert.deepEqual((await ctx.dir.getAlias('a.test', 'prog'))?.targets, ['|true']);
  });
});

void test("web rights: no alias over a mailbox, nor over a higher-rights mailbox's extensions; its quota, autoresponder and spam folder are its own", async () => {
  await world(async ({ ctx, client }) => {
    const ann = client();
    const csrf = await ann.logIn('ann@a.test', 'secret');
    // root@a.test is a system administrator: an alias `root` would take its mail (aliases win at delivery)
    const r = await ann.post('/domain/a.test/alias-add', { csrf, local: 'root', target: 'ann@a.test' });
    assert.equal(r.status, 303);
    assert.match(ann.flash(), /root@a\.test is a mailbox: an alias of that name would take all its mail/);
    assert.equal(await ctx.dir.getAlias('a.test', 'root'), null);
    // the same for a plain mailbox, for everyone on the web
    await ann.post('/domain/a.test/alias-add', { csrf, local: 'joe', target: 'ann@a.test' });
    assert.match(ann.flash(), /joe@a\.test is a mailbox/);
    assert.equal(await ctx.dir.getAlias('a.test', 'joe'), null);
    // root-anything is root's (box-ext) when no mailbox or alias has that name: needs root's rights
    assert.equal(
      (await ann.post('/domain/a.test/alias-add', { csrf, local: 'root-x', target: 'ann@a.test' })).status,
      403,
    );
    assert.equal(await ctx.dir.getAlias('a.test', 'root-x'), null);
    // joe-x is a plain mailbox's extension: the domain's administrator may
    assert.equal(
      (await ann.post('/domain/a.test/alias-add', { csrf, local: 'joe-x', target: 'ann@a.test' })).status,
      303,
    );
    assert.deepEqual((await ctx.dir.getAlias('a.test', 'joe-x'))?.targets, ['ann@a.test']);
    // every change of root@a.test needs a system administrator
    for (const [action, form] of [
      ['mailbox-quota', { local: 'root', quota: '1' }],
      ['vacation', { local: 'root', on: '1', days: '1', subject: 'x', body: 'away' }],
    ] as const) {
      const x = await ann.post(`/domain/a.test/${action}`, { csrf, ...form });
      assert.equal(x.status, 403, action);
      assert.match(await x.text(), /not a system administrator/, action);
    }
    const m = await ctx.dir.getMailbox('a.test', 'root');
    assert.equal(m?.quotaBytes, null, 'quota unchanged');
    assert.equal(m?.vacation, null, 'no vacation reply');
    // the spam folder's form is the user's own: with root's address in it, refused
    const spam = await ann.post('/me/spam', { csrf, self: 'root@a.test', on: '1', folder: 'Junk' });
    assert.equal(spam.status, 403);
    assert.equal((await ctx.dir.getMailbox('a.test', 'root'))?.spamFolder, null);
    // a plain mailbox of the domain: still the administrator's to change
    assert.equal((await ann.post('/domain/a.test/mailbox-quota', { csrf, local: 'joe', quota: '1M' })).status, 303);
    assert.equal((await ctx.dir.getMailbox('a.test', 'joe'))?.quotaBytes, 1024 * 1024);
  });
});

void test('web rights: no-password-change and no-webmail hold on every request; a new password ends the other sessions', async () => {
  await world(async ({ ctx, client }) => {
    const joe = client();
    const jc = await joe.logIn('joe@a.test', 'secret');
    const other = client();
    await other.logIn('joe@a.test', 'secret');
    // joe sets his own password: this session stays, the other one ends
    const set = await joe.post('/me/password', { csrf: jc, self: 'joe@a.test', password: 'new one', again: 'new one' });
    assert.equal(set.status, 303);
    assert.equal((await joe.get('/me')).status, 200, 'the session that set it stays');
    assert.equal((await other.get('/me')).headers.get('location'), '/login', 'the other session ended');
    // no-password-change: joe may not, his domain's administrator may
    await ctx.dir.updateMailbox('a.test', 'joe', { flags: ['no-password-change'] });
    const locked = await joe.post('/me/password', { csrf: jc, self: 'joe@a.test', password: 'x', again: 'x' });
    assert.equal(locked.status, 403);
    assert.match(await locked.text(), /no-password-change/);
    const ann = client();
    const ac = await ann.logIn('ann@a.test', 'secret');
    assert.equal(
      (await ann.post('/domain/a.test/mailbox-password', { csrf: ac, local: 'joe', password: 'y' })).status,
      303,
    );
    assert.match(ann.flash(), /password of joe@a\.test changed/);
    // no-webmail set while logged in: the next request is the login page, and so is every one after
    const j2 = client();
    const j2c = await j2.logIn('joe@a.test', 'y');
    await ctx.dir.updateMailbox('a.test', 'joe', { flags: ['no-webmail'] });
    const change = await j2.post('/me/forward', { csrf: j2c, self: 'joe@a.test', targets: 'x@y.test' });
    assert.equal(change.headers.get('location'), '/login', 'a change: the login page');
    assert.deepEqual((await ctx.dir.getMailbox('a.test', 'joe'))?.forward, [], 'no change made');
    const j3 = client();
    await ctx.dir.updateMailbox('a.test', 'joe', { flags: [] });
    await j3.logIn('joe@a.test', 'y');
    await ctx.dir.updateMailbox('a.test', 'joe', { flags: ['no-webmail'] });
    assert.equal((await j3.get('/me')).headers.get('location'), '/login', 'a page: the login page');
    await ctx.dir.updateMailbox('a.test', 'joe', { flags: [] });
    assert.equal((await j2.get('/me')).headers.get('location'), '/login', 'that session is over');
  });
});

void test('web rights: a multipart form without its boundary is a 400, not an error of the server', async () => {
  await world(async ({ base, logs }) => {
    for (const path of ['/login', '/logout', '/domain/a.test/alias-add']) {
      const r = await fetch(base + path, {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data', cookie: 'quail=whatever' },
        body: 'local=x&target=y',
        redirect: 'manual',
      });
      assert.equal(r.status, 400, path);
      assert.match(await r.text(), /The form could not be read/, path);
    }
    assert.deepEqual(
      logs.filter((l) => l.event === 'web.error'),
      [],
      'nothing logged as an error',
    );
  });
});
