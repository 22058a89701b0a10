// Issue 19's "Done when" in one run: a domain administrator in a real browser (Playwright driving Debian's Chromium)
// creates mailboxes and a list; people subscribe by mail (swaks) and confirm; a post reaches every subscriber with VERP
// and one-click unsubscribe works; a dead subscriber is removed after bounces and the owner told; a moderator accepts
// a held post in the browser; a member reads it in the archive; another domain's administrator gets 403; a change
// without the CSRF token gets 403.
// tier: system (needs quail start as root, swaks, chromium)
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  freePort,
  listenerPort,
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (quail start drops to control/quailuser; lists run as the domain account)';

const header = (msg: string, name: string): string | undefined =>
  new RegExp(`^${name}: (.*(?:\\n[ \\t].*)*)`, 'im').exec(msg.split('\n\n')[0] ?? '')?.[1]?.replace(/\n[ \t]+/g, ' ');

async function logIn(browser: Browser, base: string, login: string, password: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/login`);
  await page.getByLabel('Mailbox address').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Domains' }).waitFor();
  return page;
}

void test('lists in the web admin: issue 19 "Done when" end to end', { skip }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-weblists-'));
  const r = ['--root', root];
  let q: QuailProcess | undefined;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    chmodSync(root, 0o755);
    quail(['init', ...r, '--me', 'mx.lists.test']);
    for (const d of ['a.test', 'b.test']) quail(['domain', 'add', d, ...r]);
    quail(['user', 'add', 'ann@a.test', '--password', 'ann secret', ...r]);
    quail(['user', 'add', 'bea@b.test', '--password', 'bea secret', ...r]);
    quail(['domain', 'admin', 'add', 'a.test', 'ann@a.test', ...r]);
    quail(['domain', 'admin', 'add', 'b.test', 'bea@b.test', ...r]);
    const web = await freePort();
    const base = `http://127.0.0.1:${web}`;
    writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:0 smtp\n127.0.0.1:${web} admin\n`);
    // one-click links name the web listener; a bouncing address is probed at its first bounce (0 days), so the
    // bounce handling runs in this test's time without a clock of its own
    writeFileSync(join(root, 'control', 'listurl'), `${base}\n`);
    writeFileSync(join(root, 'control', 'listbouncedays'), '0\n');
    q = await startProcess(root);
    const log = (): string => q?.log() ?? '';
    const smtp = listenerPort(root, 'smtp');
    const inbox = (user: string): string[] => {
      const dir = join(root, 'domains', 'a.test', user, 'Maildir', 'new');
      return existsSync(dir) ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1')) : [];
    };
    const arrives = async (user: string, re: RegExp): Promise<string> => {
      let found: string | undefined;
      await waitFor(
        () => (found = inbox(user).find((m) => re.test(m))) !== undefined,
        60_000,
        () => `a message ${re} for ${user}; has:\n${inbox(user).join('\n----\n').slice(-3000)}\n${log().slice(-3000)}`,
      );
      return found as string;
    };
    const send = (from: string, to: string, subject: string, body = 'hello\n'): void => {
      const s = swaks(smtp, ['--to', to, '--header', `Subject: ${subject}`, '--body', body], from);
      assert.equal(s.status, 0, s.out);
    };
    const members = (role = 'subscriber'): string[] =>
      quail(['list', 'members', 'team@a.test', '--role', role, ...r])
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => l.split(' ')[0] as string);

    // 1. the domain administrator, in the browser: mailboxes, then the list
    const ann = await logIn(browser, base, 'ann@a.test', 'ann secret');
    await ann.getByRole('link', { name: 'a.test' }).click();
    for (const u of ['joe', 'kim', 'lee', 'mod']) {
      await ann.getByLabel('Name (before @a.test)').fill(u);
      await ann.getByLabel('Password', { exact: true }).fill(`${u} secret`);
      await ann.getByLabel('Quota (e.g. 100M, 2G, none)').fill('none');
      await ann.getByRole('button', { name: 'Add mailbox' }).click();
      await ann
        .getByRole('status')
        .filter({ hasText: `added ${u}@a.test` })
        .waitFor();
    }
    await ann.getByRole('link', { name: 'Lists' }).click();
    await ann.getByRole('heading', { name: 'Mailing lists' }).waitFor();
    await ann.getByLabel('List name (before @a.test)').fill('team');
    await ann.getByLabel(/^Owners/).fill('ann@a.test');
    await ann.getByLabel(/^Moderators/).fill('mod@a.test');
    await ann.getByLabel('Subject prefix (e.g. [team])').fill('[team]');
    await ann.getByRole('button', { name: 'Create list' }).click();
    await ann.getByRole('status').filter({ hasText: 'created list team@a.test' }).waitFor();
    // the command line sees it at once
    assert.match(quail(['list', 'show', 'team@a.test', ...r]), /subject: +"\[team\]"[\s\S]*owners: +ann@a\.test/);

    // 2. people subscribe by mail and confirm by a reply to the cookie address
    for (const u of ['joe', 'kim', 'lee']) send(`${u}@a.test`, 'team-subscribe@a.test', 'subscribe');
    for (const u of ['joe', 'kim', 'lee']) {
      const ask = await arrives(u, /Subject: confirm subscribe to team@a\.test/);
      const cookie = header(ask, 'Reply-To')?.replace(/[<>]/g, '') ?? '';
      assert.match(cookie, new RegExp(`^team-sc\\.\\d+\\.[0-9a-f]{20}-${u}=a\\.test@a\\.test$`));
      send(`${u}@a.test`, cookie, 'Re: confirm subscribe');
    }
    for (const u of ['joe', 'kim', 'lee']) await arrives(u, /Subject: WELCOME to team@a\.test/);
    assert.deepEqual(members(), ['joe@a.test', 'kim@a.test', 'lee@a.test']);
    // the owner adds an address in the browser that will bounce (no such mailbox)
    await ann.getByRole('link', { name: 'team@a.test' }).click();
    await ann.getByLabel('Add subscribers (addresses)').fill('dead@a.test');
    await ann
      .locator('form', { has: ann.getByLabel('Add subscribers (addresses)') })
      .getByRole('button')
      .click();
    await ann.getByRole('status').filter({ hasText: 'added dead@a.test' }).waitFor();
    assert.deepEqual(members(), ['dead@a.test', 'joe@a.test', 'kim@a.test', 'lee@a.test']);

    // 3. a post reaches every subscriber, each with its own VERP envelope sender and one-click link
    send('joe@a.test', 'team@a.test', 'first post', 'the first post\n');
    const got: Record<string, string> = {};
    for (const u of ['joe', 'kim', 'lee']) got[u] = await arrives(u, /Subject: \[team\] first post/);
    for (const u of ['joe', 'kim', 'lee']) {
      const m = got[u] as string;
      assert.equal(header(m, 'Return-Path'), `<team-return-1-${u}=a.test@a.test>`, m);
      assert.equal(header(m, 'List-Id'), '<team.a.test>');
      assert.equal(header(m, 'List-Unsubscribe-Post'), 'List-Unsubscribe=One-Click');
      assert.match(
        header(m, 'List-Unsubscribe') ?? '',
        new RegExp(
          `^<mailto:team-unsubscribe@a\\.test>, <http://127\\.0\\.0\\.1:${web}/lists/unsubscribe/a\\.test/team/${u}%3Da\\.test/\\d+\\.[0-9a-f]{20}>$`,
        ),
      );
    }

    // 4. the dead subscriber: its copy bounces, the probe bounces, it is removed and the owner is told
    const told = await arrives('ann', /Subject: team@a\.test: dead@a\.test removed \(bouncing\)/);
    assert.match(told, /probe bounced too/);
    assert.deepEqual(members(), ['joe@a.test', 'kim@a.test', 'lee@a.test']);

    // 5. one-click unsubscribe as a mail client does it (RFC 8058): a POST of lee's own link
    const url = /<(http:[^>]+)>/.exec(header(got['lee'] as string, 'List-Unsubscribe') ?? '')?.[1] ?? '';
    const click = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    assert.equal(click.status, 200);
    assert.equal((await click.text()).trim(), 'lee@a.test is unsubscribed from team@a.test');
    assert.deepEqual(members(), ['joe@a.test', 'kim@a.test']);

    // 6. the owner makes the list moderated in the browser; a post waits; the moderator accepts it in the browser
    await ann.reload();
    await ann.getByLabel('Posts wait for a moderator').check();
    await ann.getByRole('button', { name: 'Save settings' }).click();
    await ann.getByRole('status').filter({ hasText: 'moderated on' }).waitFor();
    const hostile = 'Hi <script>alert("x")</script><img src=x onerror=alert(1)> & <b>not bold</b>\n';
    send('kim@a.test', 'team@a.test', 'held post', hostile);
    await arrives('mod', /Subject: MODERATE for team@a\.test: held post/);
    const mod = await logIn(browser, base, 'mod@a.test', 'mod secret');
    await mod.getByRole('link', { name: 'Lists' }).click();
    await mod.getByRole('link', { name: 'team@a.test' }).click();
    const held = mod.locator('article[data-held]');
    assert.equal(await held.count(), 1);
    assert.match(await held.innerText(), /held post/);
    assert.equal(await mod.getByRole('heading', { name: 'Settings' }).count(), 0, 'a moderator does not manage');
    await held.getByRole('button', { name: 'Accept' }).click();
    await mod.getByRole('status').filter({ hasText: 'accepted' }).waitFor();
    for (const u of ['joe', 'kim']) {
      const m = await arrives(u, /Subject: \[team\] held post/);
      assert.equal(header(m, 'Return-Path'), `<team-return-2-${u}=a.test@a.test>`);
    }
    assert.equal(inbox('lee').filter((m) => /held post/.test(m) && /List-Id/.test(m)).length, 0, 'lee has left');

    // 7. a member reads it in the archive in the browser: the mail's HTML is shown as text, nothing runs
    const joe = await logIn(browser, base, 'joe@a.test', 'joe secret');
    let dialogs = 0;
    joe.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    await joe.getByRole('link', { name: 'Lists' }).click();
    await joe.getByRole('link', { name: 'team@a.test' }).click();
    await joe.getByRole('link', { name: '[team] held post' }).click();
    await joe.getByRole('heading', { name: '[team] held post' }).waitFor();
    assert.equal((await joe.locator('[data-post-body]').innerText()).trimEnd(), hostile.trimEnd());
    assert.equal(await joe.locator('script, img, b').count(), 0, 'no element from the mail');
    assert.equal(dialogs, 0);
    // a member does not manage the list: no settings, and a change is refused
    assert.equal(await joe.getByRole('heading', { name: 'Settings' }).count(), 0);

    // 8. the administrator of another domain: 403 on this list's page, on its archive and for a list that does not exist
    const bea = await logIn(browser, base, 'bea@b.test', 'bea secret');
    assert.equal((await bea.goto(`${base}/list/team%40a.test`))?.status(), 403);
    assert.equal((await bea.goto(`${base}/list/team%40a.test/archive/1`))?.status(), 403);
    assert.equal((await bea.goto(`${base}/list/nothing%40a.test`))?.status(), 403);

    // 9. a change without the CSRF token (the session cookie alone): 403, nothing changed
    const forged = await ann.request.post(`${base}/list/team%40a.test/members`, {
      form: { role: 'subscriber', add: 'eve@a.test' },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    assert.deepEqual(members(), ['joe@a.test', 'kim@a.test']);
    await waitFor(() => /web\.change op=list\.members status=403/.test(log()), 10_000, log);

    // 10. users' own lists: off until the domain's administrator allows them (in the browser; the CLI sees it)
    assert.equal(
      await joe.goto(`${base}/lists`).then(() => joe.getByRole('button', { name: 'Create list' }).count()),
      0,
    );
    await ann.goto(`${base}/lists`);
    await ann.getByLabel('Users of a.test may create their own lists').check();
    await ann.getByRole('button', { name: 'Save', exact: true }).click();
    await ann.getByRole('status').filter({ hasText: 'users of a.test may create their own lists' }).waitFor();
    assert.match(quail(['list', 'users', 'a.test', ...r]), /^on: /);
    await joe.reload();
    await joe.getByLabel('List name (before @a.test)').fill('joes');
    await joe.getByRole('button', { name: 'Create list' }).click();
    await joe.getByRole('status').filter({ hasText: 'created list joes@a.test' }).waitFor();
    assert.match(quail(['list', 'show', 'joes@a.test', ...r]), /owners: +joe@a\.test/);
    assert.equal(quail(['list', 'users', 'a.test', 'off', ...r]).trim(), 'only administrators create lists in a.test');
  } finally {
    await browser.close();
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
