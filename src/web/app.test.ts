// The web app in-process (hono's app.request, no socket) over src/access's serveWeb and a real SQLite directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveWeb } from '../access/index.js';
import { createDomain, createMailbox, openDirectory, type Ctx } from '../directory/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { bytes, createWebApp, parseQuota } from './index.js';
import { cookieJar } from '../../test/support/cookies.js';

const acct = { user: 'nobody', uid: 65534, gid: 65534 };

interface Browser {
  get(path: string): Promise<Response>;
  post(path: string, form: Record<string, string>): Promise<Response>;
  readonly cookies: Map<string, string>;
  readonly setCookies: string[];
}

async function fixture(
  body: (ctx: Ctx, b: () => Browser, waits: number[], throttle: LoginThrottle) => Promise<void>,
  secure = false,
) {
  const root = mkdtempSync(join(tmpdir(), 'quail-web-'));
  const dir = await openDirectory({ root });
  const ctx = { root, dir };
  const waits: number[] = [];
  const throttle = new LoginThrottle();
  const app = createWebApp({
    backend: (req) => serveWeb(ctx, req),
    secure,
    throttle,
    clientIp: () => '127.0.0.9',
    log: () => undefined,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    routes: [
      {
        method: 'POST',
        path: '/unsubscribe/:token',
        handler: () => Promise.resolve(new Response('gone', { status: 200 })),
      },
    ],
  });
  const browser = (): Browser => {
    const jar = cookieJar();
    const { cookies, setCookies, keep } = jar;
    const cookie = jar.header;
    return {
      cookies,
      setCookies,
      get: async (path) => keep(await app.request(path, { headers: { cookie: cookie() } })),
      post: async (path, form) =>
        keep(
          await app.request(path, {
            method: 'POST',
            headers: { cookie: cookie(), 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams(form).toString(),
          }),
        ),
    };
  };
  try {
    await createDomain(ctx, { name: 'a.example', account: acct });
    await createDomain(ctx, { name: 'b.example', account: acct });
    await createMailbox(ctx, { address: 'ann@a.example', password: 'secret' });
    await createMailbox(ctx, { address: 'joe@a.example', password: 'secret', quotaBytes: 1000 });
    await createMailbox(ctx, { address: 'bea@b.example', password: 'secret' });
    await dir.addDomainAdmin('a.example', 'ann@a.example');
    await body(ctx, browser, waits, throttle);
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
}

async function logIn(b: Browser, login: string, password: string): Promise<Response> {
  const form = await (await b.get('/login')).text();
  const pre = /name="pre" value="([^"]+)"/.exec(form)?.[1] ?? '';
  return b.post('/login', { pre, login, password });
}

const csrfOf = (page: string): string => /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';

void test('web: log in, see the domain, add a mailbox with the CSRF token; refused without it and for another domain', async () => {
  await fixture(async (ctx, browser) => {
    const b = browser();
    assert.equal((await b.get('/')).headers.get('location'), '/login', 'no session: the login page');
    const r = await logIn(b, 'ann@a.example', 'secret');
    assert.equal(r.status, 303);
    const set = b.setCookies.find((c) => c.startsWith('quail='));
    assert.match(set ?? '', /HttpOnly/);
    assert.match(set ?? '', /SameSite=Strict/);
    assert.doesNotMatch(set ?? '', /Secure/, 'plain HTTP: no Secure flag (it would never come back)');
    const home = await (await b.get('/')).text();
    assert.match(home, /href="\/domain\/a\.example"/);
    const page = await b.get('/domain/a.example');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const html = await page.text();
    assert.match(html, /data-mailbox="joe@a\.example"/);
    assert.match(html, /<meter\s+min="0"\s+max="1000"/, 'the quota bar');
    assert.match(html, /<label for="new-local">/);
    // without the token: 403, nothing made
    const forged = await b.post('/domain/a.example/mailbox-add', { local: 'eve', password: 'pw', quota: 'none' });
    assert.equal(forged.status, 403);
    assert.equal(await ctx.dir.getMailbox('a.example', 'eve'), null);
    const csrf = csrfOf(html);
    const made = await b.post('/domain/a.example/mailbox-add', { csrf, local: 'new', password: 'pw', quota: '2M' });
    assert.equal(made.status, 303);
    assert.equal((await ctx.dir.getMailbox('a.example', 'new'))?.quotaBytes, 2 * 1024 * 1024);
    assert.match(await (await b.get('/domain/a.example')).text(), /role="status">\s*added new@a\.example/);
    // services: POP3 only (IMAP and SMTP AUTH off), then all back on
    await b.post('/domain/a.example/mailbox-services', { csrf, local: 'joe', pop: '1' });
    assert.deepEqual((await ctx.dir.getMailbox('a.example', 'joe'))?.flags, ['no-imap', 'no-smtp-auth']);
    assert.match(await (await b.get('/domain/a.example')).text(), /joe@a\.example may use POP3/);
    await b.post('/domain/a.example/mailbox-services', { csrf, local: 'joe', pop: '1', imap: '1', smtp: '1' });
    assert.deepEqual((await ctx.dir.getMailbox('a.example', 'joe'))?.flags, []);
    // another domain: 403 for the page and for a change
    assert.equal((await b.get('/domain/b.example')).status, 403);
    const other = await b.post('/domain/b.example/mailbox-remove', { csrf, local: 'bea' });
    assert.equal(other.status, 403);
    assert.notEqual(await ctx.dir.getMailbox('b.example', 'bea'), null);
    // a wrong request is said on the page, not a crash
    await b.post('/domain/a.example/mailbox-quota', { csrf, local: 'joe', quota: 'lots' });
    assert.match(await (await b.get('/domain/a.example')).text(), /role="alert">\s*quota &quot;lots&quot;/);
    // logging out needs the token and ends the session
    assert.equal((await b.post('/logout', { csrf })).headers.get('location'), '/login');
    assert.equal((await b.get('/domain/a.example')).headers.get('location'), '/login');
  });
});

void test('web: values are escaped; a user sees its own page only; the route table is mounted', async () => {
  await fixture(async (ctx, browser) => {
    await ctx.dir.addAlias('a.example', 'x', ['"><script>alert(1)</script>@evil.example']).catch(() => undefined);
    await ctx.dir.updateMailbox('a.example', 'ann', { realName: '<script>alert(1)</script>' });
    const a = browser();
    await logIn(a, 'ann@a.example', 'secret');
    const html = await (await a.get('/domain/a.example')).text();
    assert.doesNotMatch(html, /<script>/);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    const j = browser();
    await logIn(j, 'joe@a.example', 'secret');
    assert.equal((await j.get('/domain/a.example')).status, 403);
    const me = await (await j.get('/me')).text();
    assert.match(me, /joe@a\.example/);
    const f = await j.post('/me/forward', {
      csrf: csrfOf(me),
      self: 'joe@a.example',
      targets: 'joe@else.example',
      keep: '1',
    });
    assert.equal(f.status, 303);
    assert.deepEqual((await ctx.dir.getMailbox('a.example', 'joe'))?.forward, ['joe@else.example']);
    // a forged `self` is the backend's to refuse
    assert.equal(
      (await j.post('/me/password', { csrf: csrfOf(me), self: 'ann@a.example', password: 'x', again: 'x' })).status,
      403,
    );
    assert.equal(await (await j.post('/unsubscribe/abc', {})).text(), 'gone');
  });
});

void test('web: failed logins are throttled per address and login (as POP3), the login form needs its own token', async () => {
  await fixture(async (_ctx, browser, waits) => {
    const b = browser();
    for (let i = 0; i < 3; i++) await logIn(b, 'ann@a.example', 'wrong');
    assert.deepEqual(waits, [1000, 2000], 'the second and third attempts waited');
    assert.match(await (await b.get('/login')).text(), /wrong address or password/);
    const noPre = await b.post('/login', { login: 'ann@a.example', password: 'secret' });
    assert.equal(noPre.headers.get('location'), '/login');
    assert.equal(b.cookies.has('quail'), false, 'no session without the form token');
  });
});

void test('web: a failed login through an alias domain counts for the mailbox itself', async () => {
  await fixture(async (ctx, browser, _waits, throttle) => {
    await ctx.dir.addAliasDomain('alias-a.example', 'a.example');
    await logIn(browser(), 'Ann@Alias-A.example', 'wrong');
    // from another address, with no failures of its own: only the login's count slows it
    assert.ok(throttle.delayFor('192.0.2.7', 'ann@a.example') > 0, 'ann@a.example is slowed');
  });
});

void test('web: served as secure, cookies are __Host- and Secure', async () => {
  await fixture(async (_ctx, browser) => {
    const b = browser();
    await logIn(b, 'ann@a.example', 'secret');
    const set = b.setCookies.find((c) => c.startsWith('__Host-quail='));
    assert.match(set ?? '', /Secure/);
    assert.match(set ?? '', /HttpOnly/);
    assert.match(set ?? '', /Path=\//);
  }, true);
});

void test('parseQuota: sizes, none, and what is not a size', () => {
  assert.equal(parseQuota('none'), null);
  assert.equal(parseQuota(''), null);
  assert.equal(parseQuota('5000'), 5000);
  assert.equal(parseQuota('100M'), 100 * 1024 ** 2);
  assert.equal(parseQuota('2 GiB'), 2 * 1024 ** 3);
  assert.equal(parseQuota('lots'), undefined);
  assert.equal(parseQuota('99999999999999T'), undefined);
});

void test('bytes: sizes in words for the quota column', () => {
  assert.equal(bytes(0), '0 bytes');
  assert.equal(bytes(1023), '1023 bytes');
  assert.equal(bytes(1536), '1.5 KiB');
  assert.equal(bytes(2 * 1024 * 1024), '2.0 MiB');
  assert.equal(bytes(300 * 1024 ** 3), '300 GiB');
});
