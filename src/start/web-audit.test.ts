// The web admin's pages for domain administrators and users in a real browser (issue 19): the system administrator's
// page of domain administrators, a domain's autoresponders, a user's spam folder — and every kind of page audited
// with axe-core (WCAG 2 A and AA) and on a phone-sized screen (no sideways scrolling).
// tier: system (needs quail start, chromium)
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import axe from 'axe-core';
import { chromium, type Page } from 'playwright-core';
import { freePort, quail, startProcess, type QuailProcess } from '../../test/support/start.js';

const WCAG = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/** axe-core in the page (evaluated over the DevTools protocol: the page's CSP allows no script), WCAG 2 A/AA. */
async function audit(page: Page, what: string): Promise<void> {
  await page.evaluate(axe.source);
  const violations = await page.evaluate(async (tags) => {
    const r = await (window as unknown as { axe: typeof axe }).axe.run(document, {
      runOnly: { type: 'tag', values: tags },
    });
    return r.violations.map(
      (v) => `${v.id} (${v.impact ?? '-'}): ${v.help} — ${v.nodes.map((n) => n.html).join(' | ')}`,
    );
  }, WCAG);
  assert.deepEqual(violations, [], `${what}: accessibility violations`);
}

/** A phone's screen (360 × 740 CSS pixels): the page fits its width, nothing scrolls sideways. */
async function fitsPhone(page: Page, what: string): Promise<void> {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 360, height: 740 });
  const [scroll, client, wide] = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const over = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > w)
      .map(
        (e) => `<${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}> ${Math.round(e.getBoundingClientRect().right)}`,
      );
    return [document.documentElement.scrollWidth, w, over.slice(0, 8).join(', ')] as const;
  });
  assert.ok(scroll <= client, `${what}: ${scroll} px wide on a ${client} px screen (${wide})`);
  if (size) await page.setViewportSize(size);
}

const check = async (page: Page, what: string): Promise<void> => {
  await audit(page, what);
  await fitsPhone(page, what);
};

async function logIn(page: Page, base: string, login: string, password: string): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel('Mailbox address').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Domains' }).waitFor();
}

void test('web admin: domain administrators, autoresponders, spam folder; every page passes axe (WCAG 2 AA) and fits a phone', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-webaudit-'));
  const r = ['--root', root];
  let q: QuailProcess | undefined;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  try {
    chmodSync(root, 0o755);
    quail(['init', ...r, '--me', 'mx.webaudit.test']);
    for (const d of ['a.test', 'b.test']) quail(['domain', 'add', d, ...r]);
    quail(['user', 'add', 'root@a.test', '--password', 'root secret', '--flag', 'system-admin', ...r]);
    quail(['user', 'add', 'ann@a.test', '--password', 'ann secret', ...r]);
    quail(['user', 'add', 'carl@a.test', '--password', 'carl secret', ...r]);
    quail(['user', 'add', 'bea@b.test', '--password', 'bea secret', ...r]);
    const web = await freePort();
    writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:0 smtp\n127.0.0.1:${web} admin\n`);
    q = await startProcess(root);
    const base = `http://127.0.0.1:${web}`;

    // the login page, empty and with its error
    const anon = await browser.newPage();
    await anon.goto(`${base}/login`);
    await check(anon, 'login page');
    // the audit can fail: a field without its label is found
    await anon.evaluate(() => document.querySelector('label[for="login"]')?.remove());
    await assert.rejects(audit(anon, 'login page without a label'), /label/);
    await anon.goto(`${base}/login`);
    await anon.getByLabel('Mailbox address').fill('nobody@a.test');
    await anon.getByLabel('Password').fill('wrong');
    await anon.getByRole('button', { name: 'Log in' }).click();
    await anon.getByRole('alert').waitFor();
    await check(anon, 'login page with an error');
    assert.equal((await anon.goto(`${base}/no/such/page`))?.status(), 404);
    await check(anon, '404 page');

    // the system administrator makes ann an administrator of a.test on the web (as quail domain admin add)
    const sys = await browser.newPage();
    await logIn(sys, base, 'root@a.test', 'root secret');
    await check(sys, 'home page (system administrator)');
    await sys.getByRole('link', { name: 'Administrators' }).click();
    await sys.getByRole('heading', { name: 'Domain administrators' }).waitFor();
    await check(sys, 'domain administrators page (none)');
    await sys.getByLabel('Domain', { exact: true }).selectOption('a.test');
    await sys.getByLabel('Mailbox address (of any domain)').fill('ann@a.test');
    await sys.getByRole('button', { name: 'Add administrator' }).click();
    await sys.getByRole('status').filter({ hasText: 'ann@a.test administers a.test' }).waitFor();
    assert.match(quail(['domain', 'admin', 'list', ...r]), /^a\.test ann@a\.test$/m);
    // and bea, of b.test, for a.test too — then removed again; the command line sees both changes
    await sys.getByLabel('Domain', { exact: true }).selectOption('a.test');
    await sys.getByLabel('Mailbox address (of any domain)').fill('bea@b.test');
    await sys.getByRole('button', { name: 'Add administrator' }).click();
    await sys.getByRole('status').filter({ hasText: 'bea@b.test administers a.test' }).waitFor();
    await check(sys, 'domain administrators page (two)');
    assert.match(quail(['domain', 'admin', 'list', 'a.test', ...r]), /bea@b\.test/);
    await sys.getByRole('button', { name: 'Remove bea@b.test as administrator of a.test' }).click();
    await sys.getByRole('status').filter({ hasText: 'bea@b.test no longer administers a.test' }).waitFor();
    assert.doesNotMatch(quail(['domain', 'admin', 'list', ...r]), /bea@b\.test/);
    // a wrong login is said on the page, nothing made
    await sys.getByLabel('Mailbox address (of any domain)').fill('nobody@b.test');
    await sys.getByRole('button', { name: 'Add administrator' }).click();
    await sys.getByRole('alert').waitFor();
    await check(sys, 'domain administrators page with an error');
    await sys.goto(`${base}/domain/b.test`);
    await check(sys, 'domain page (system administrator)');

    // ann, a domain administrator: her domain's page lists its administrators; she sets carl's autoresponder
    const ann = await browser.newPage();
    await logIn(ann, base, 'ann@a.test', 'ann secret');
    assert.equal(await ann.getByRole('link', { name: 'Administrators' }).count(), 0, 'no system page link');
    assert.equal((await ann.goto(`${base}/admins`))?.status(), 403);
    await check(ann, '403 page');
    await ann.goto(`${base}/domain/a.test`);
    await ann.getByRole('heading', { name: 'Administrators' }).waitFor();
    assert.match(await ann.locator('main').innerText(), /Administrators\s+ann@a\.test/);
    await check(ann, 'domain page (domain administrator)');
    await ann.getByLabel('Mailbox', { exact: true }).selectOption('carl');
    await ann.getByLabel('Subject (empty: “Auto:” and the original subject)').fill('Away');
    await ann.getByLabel('Message').fill('Carl is away until Monday.');
    await ann.getByRole('button', { name: 'Set vacation reply' }).click();
    await ann.getByRole('status').filter({ hasText: 'vacation reply on for carl@a.test' }).waitFor();
    await check(ann, 'domain page with an autoresponder');
    const carlInfo = (): { vacation: { body: string } | null } =>
      JSON.parse(quail(['user', 'info', 'carl@a.test', '--json', ...r])) as { vacation: { body: string } | null };
    assert.equal(carlInfo().vacation?.body, 'Carl is away until Monday.');
    await ann.getByRole('button', { name: 'Turn off the vacation reply of carl@a.test' }).click();
    await ann.getByRole('status').filter({ hasText: 'no vacation reply for carl@a.test' }).waitFor();
    assert.equal(carlInfo().vacation, null);
    // not for a mailbox of another domain, even with a valid session and CSRF token: 403
    const csrf = await ann.locator('input[name="csrf"]').first().getAttribute('value');
    const forged = await ann.request.post(`${base}/domain/b.test/vacation`, {
      form: { csrf: csrf ?? '', local: 'bea', on: '1', body: 'x', days: '7' },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    assert.equal(
      (JSON.parse(quail(['user', 'info', 'bea@b.test', '--json', ...r])) as { vacation: unknown }).vacation,
      null,
    );

    // carl, a user: his page, the spam folder setting
    const carl = await browser.newPage();
    await logIn(carl, base, 'carl@a.test', 'carl secret');
    await check(carl, 'home page (user)');
    await carl.goto(`${base}/me`);
    await check(carl, 'user page');
    await carl.getByLabel('Put mail the spam filter marked as spam in a folder').check();
    await carl.getByLabel('Folder (as your mail program shows it)').fill('Junk');
    await carl.getByRole('button', { name: 'Save spam setting' }).click();
    await carl.getByRole('status').filter({ hasText: 'spam for carl@a.test goes to the folder Junk' }).waitFor();
    assert.match(quail(['user', 'info', 'carl@a.test', ...r]), /^spam: {6}folder Junk /m);
    await check(carl, 'user page with a message');
    await carl.getByLabel('Folder (as your mail program shows it)').fill('../evil');
    await carl.getByRole('button', { name: 'Save spam setting' }).click();
    await carl.getByRole('alert').filter({ hasText: 'is not a folder name' }).waitFor();
    await carl.getByLabel('Put mail the spam filter marked as spam in a folder').uncheck();
    await carl.getByRole('button', { name: 'Save spam setting' }).click();
    await carl.getByRole('status').filter({ hasText: 'spam for carl@a.test stays in the inbox' }).waitFor();
    assert.match(quail(['user', 'info', 'carl@a.test', ...r]), /^spam: {6}inbox$/m);
  } finally {
    await browser.close();
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
