// The list pages in-process (hono's app.request, no socket) over src/access's serveWeb, a real SQLite directory and
// real list files: what each page shows, escaping of mail text, the CSRF token on every form, 403s and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveWeb } from '../access/index.js';
import { createDomain, createMailbox, openDirectory } from '../directory/index.js';
import { createList, listHome } from '../lists/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { createWebApp } from './index.js';

const acct = { user: 'nobody', uid: 65534, gid: 65534 };

void test('list pages: settings for the owner, escaped mail text, CSRF on every form, 403 for others', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-weblist-'));
  const dir = await openDirectory({ root });
  const ctx = { root, dir };
  try {
    await createDomain(ctx, { name: 'a.example', account: acct });
    await createDomain(ctx, { name: 'b.example', account: acct });
    for (const a of ['own@a.example', 'sub@a.example', 'bea@b.example'])
      await createMailbox(ctx, { address: a, password: 'pw' });
    await dir.addDomainAdmin('b.example', 'bea@b.example');
    await createList(ctx, {
      address: 'team@a.example',
      owners: ['own@a.example'],
      options: { description: '<i>x</i>' },
    });
    await dir.lists.addMember('a.example', 'team', 'subscriber', 'sub@a.example');
    const home = listHome(root, 'a.example', 'team');
    mkdirSync(join(home, 'archive'), { recursive: true });
    writeFileSync(
      join(home, 'archive', '1'),
      'From: <script>a</script>\nSubject: =?x?= <b>hi</b>\nContent-Transfer-Encoding: quoted-printable\n\n' +
        '<img src=3Dx onerror=3Dalert(1)> caf=C3=A9=\n done\n',
    );
    const app = createWebApp({
      backend: (req) => serveWeb(ctx, req),
      secure: false,
      throttle: new LoginThrottle(),
      clientIp: () => '127.0.0.9',
      log: () => undefined,
    });
    const session = async (login: string) => {
      const form = await app.request('/login');
      const pre = /name="pre" value="([^"]+)"/.exec(await form.text())?.[1] ?? '';
      const preCookie = (form.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
      const r = await app.request('/login', {
        method: 'POST',
        headers: { cookie: preCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ pre, login, password: 'pw' }).toString(),
      });
      const cookie =
        r.headers
          .getSetCookie()
          .find((c) => c.startsWith('quail='))
          ?.split(';')[0] ?? '';
      assert.notEqual(cookie, '', `${login} logged in`);
      return {
        get: (path: string) => app.request(path, { headers: { cookie } }),
        post: (path: string, form: Record<string, string>) =>
          app.request(path, {
            method: 'POST',
            headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams(form).toString(),
          }),
      };
    };

    const own = await session('own@a.example');
    const page = await own.get('/list/team%40a.example');
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Save settings/);
    assert.match(html, /&lt;i&gt;x&lt;\/i&gt;/, 'the description is escaped');
    assert.match(html, /=\?x\?= &lt;b&gt;hi&lt;\/b&gt;/, 'the subject in the archive is escaped');
    assert.doesNotMatch(html, /<b>hi|<i>x/);
    // every form that changes something carries the session's CSRF token
    const forms = html.match(/<form[^>]*method="post"[\s\S]*?<\/form>/g) ?? [];
    assert.ok(forms.length >= 8, `forms: ${forms.length}`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    for (const f of forms) assert.ok(f.includes(`name="csrf" value="${csrf}"`), f.slice(0, 200));

    // the owner adds and removes a subscriber; a bad size is said on the page, nothing changed
    assert.equal(
      (await own.post('/list/team%40a.example/members', { csrf, role: 'subscriber', add: 'x@y.example, z@y.example' }))
        .status,
      303,
    );
    await own.post('/list/team%40a.example/members', { csrf, role: 'subscriber', remove: 'z@y.example' });
    const subs = (await dir.lists.members('a.example', 'team', 'subscriber')).map((m) => m.address);
    assert.deepEqual(subs, ['sub@a.example', 'x@y.example']);
    const bad = await own.post('/list/team%40a.example/options', { csrf, maxSize: 'huge', moderated: '1' });
    // the flash cookie says it on the next page
    assert.match(
      decodeURIComponent(decodeURIComponent(bad.headers.getSetCookie().join(' '))),
      /largest post "huge": give a size/,
    );
    assert.equal((await dir.lists.get('a.example', 'team'))?.options.moderated, false);
    assert.equal(
      (await own.post('/list/team%40a.example/members', { role: 'subscriber', add: 'e@y.example' })).status,
      403,
    );

    // a subscriber reads the post: the mail's HTML as text, quoted-printable decoded; no settings
    const sub = await session('sub@a.example');
    const sp = await (await sub.get('/list/team%40a.example')).text();
    assert.doesNotMatch(sp, /Save settings/);
    const post = await (await sub.get('/list/team%40a.example/archive/1')).text();
    assert.match(post, /&lt;img src=x onerror=alert\(1\)&gt; café done/);
    assert.match(post, /&lt;script&gt;a&lt;\/script&gt;/);
    assert.doesNotMatch(post, /<img|<script>a/);
    assert.equal((await sub.get('/list/team%40a.example/archive/2')).status, 404);
    assert.equal((await sub.get('/list/team%40a.example/archive/x')).status, 404);
    assert.equal((await sub.post('/list/team%40a.example/delete', { csrf: 'x' })).status, 403);

    // another domain's administrator: 403 for the page, the post and a change; a junk address is 400
    const bea = await session('bea@b.example');
    assert.equal((await bea.get('/list/team%40a.example')).status, 403);
    assert.equal((await bea.get('/list/team%40a.example/archive/1')).status, 403);
    assert.equal((await bea.get('/list/not%20an%20address')).status, 400);
    const beaCsrf = /name="csrf" value="([^"]+)"/.exec(await (await bea.get('/lists')).text())?.[1] ?? '';
    assert.equal((await bea.post('/list/team%40a.example/delete', { csrf: beaCsrf })).status, 403);
    assert.ok(await dir.lists.get('a.example', 'team'), 'still there');
  } finally {
    await dir.close();
    rmSync(root, { recursive: true, force: true });
  }
});
