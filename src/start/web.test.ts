// The web admin in a real browser: Playwright driving Debian's Chromium against a real `quail start` (issue 19).
// tier: system (needs quail start, swaks, chromium)
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  freePort,
  listenerPort,
  quail,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

/** Writes `bytes` on a raw connection and closes its side; everything the server said before it closed (10 s at most). */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => c.end(bytes)); // then half-closed: a cut request
    let said = '';
    const timer = setTimeout(() => c.destroy(), 10_000);
    c.on('data', (d: Buffer) => (said += d.toString('latin1')));
    c.on('error', () => undefined);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(said);
    });
  });
}

const webdPid = (root: string): number | undefined =>
  (JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as { webd?: { pid: number } }).webd?.pid;

void test('web admin: log in, add a mailbox, mail to it, its count, a quota; 403 for another domain and without CSRF', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-web-'));
  const r = ['--root', root];
  let q: QuailProcess | undefined;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  try {
    chmodSync(root, 0o755); // mkdtemp made it 0700: the web and delivery accounts must reach it
    quail(['init', ...r, '--me', 'mx.web.test']);
    for (const d of ['a.test', 'b.test']) quail(['domain', 'add', d, ...r]);
    quail(['user', 'add', 'ann@a.test', '--password', 'ann secret', ...r]);
    quail(['user', 'add', 'bea@b.test', '--password', 'bea secret', ...r]);
    quail(['domain', 'admin', 'add', 'a.test', 'ann@a.test', ...r]);
    const web = await freePort();
    writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:0 smtp\n127.0.0.1:${web} admin\n`);
    q = await startProcess(root);
    const log = (): string => q?.log() ?? '';
    const base = `http://127.0.0.1:${web}`;
    const page = await browser.newPage();

    // log in with the keyboard: the fields by their labels, Enter submits
    await page.goto(`${base}/`);
    assert.equal(new URL(page.url()).pathname, '/login');
    await page.getByLabel('Mailbox address').fill('ann@a.test');
    await page.getByLabel('Password').fill('ann secret');
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('heading', { name: 'Domains' }).waitFor();
    await page.getByRole('link', { name: 'a.test' }).click();
    await page.getByRole('heading', { name: 'a.test' }).waitFor();

    // add a mailbox; the command line sees it at once
    await page.getByLabel('Name (before @a.test)').fill('carl');
    await page.getByLabel('Password', { exact: true }).fill('carl secret');
    await page.getByLabel('Quota (e.g. 100M, 2G, none)').fill('1M');
    await page.getByRole('button', { name: 'Add mailbox' }).click();
    await page.getByRole('status').filter({ hasText: 'added carl@a.test' }).waitFor();
    assert.match(quail(['user', 'list', 'a.test', ...r]), /^carl@a\.test$/m);

    // mail to it over SMTP (swaks), then its count on the page
    const sent = swaks(listenerPort(root, 'smtp'), ['--to', 'carl@a.test']);
    assert.equal(sent.status, 0, sent.out);
    const maildir = join(root, 'domains', 'a.test', 'carl', 'Maildir', 'new');
    await waitFor(() => existsSync(maildir) && readdirSync(maildir).length === 1, 30_000, log);
    await page.reload();
    const row = page.locator('tr[data-mailbox="carl@a.test"]');
    assert.equal(await row.locator('[data-messages]').getAttribute('data-messages'), '1');
    assert.match(await row.innerText(), /1 message\b/);

    // a quota: set in the browser, seen by the command line and as the bar's maximum
    await page.getByLabel('Quota for carl').fill('2M');
    await row.getByRole('button', { name: 'Set' }).first().click();
    await page.getByRole('status').filter({ hasText: 'quota of carl@a.test' }).waitFor();
    const info = JSON.parse(quail(['user', 'info', 'carl@a.test', '--json', ...r])) as { quotaBytes: number };
    assert.equal(info.quotaBytes, 2 * 1024 * 1024);
    assert.equal(
      await page.locator('tr[data-mailbox="carl@a.test"] meter').getAttribute('max'),
      String(2 * 1024 * 1024),
    );

    // the other way round: a mailbox added at the command line is on the page at once
    quail(['user', 'add', 'dan@a.test', '--password', 'dan secret', ...r]);
    await page.reload();
    assert.equal(await page.locator('tr[data-mailbox="dan@a.test"]').count(), 1);

    // another domain's page: 403
    const other = await page.goto(`${base}/domain/b.test`);
    assert.equal(other?.status(), 403);
    // a change without the CSRF token (the session cookie alone): 403, nothing made
    const forged = await page.request.post(`${base}/domain/a.test/mailbox-add`, {
      form: { local: 'eve', password: 'x', quota: 'none' },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
    assert.doesNotMatch(quail(['user', 'list', 'a.test', ...r]), /eve@/);
    // log events travel in batches: wait for the line
    await waitFor(() => /web\.change op=mailbox\.add status=403/.test(log()), 10_000, log);

    // hostile input on the listener: answered or dropped, and the same web process goes on serving
    const pid = webdPid(root);
    assert.ok(pid !== undefined && pid !== q.child.pid, 'a process of its own');
    assert.match(await raw(web, 'EHLO evil\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(
      await raw(web, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`),
      /^HTTP\/1\.1 431 |^$/,
    );
    assert.match(await raw(web, 'GET /login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab'), /^$|^HTTP/);
    const cut = connect(web, '127.0.0.1', () => cut.end('POST /login HTTP/1.1\r\nHost: x\r\nContent-Le'));
    cut.on('error', () => undefined);
    assert.match(
      await raw(
        web,
        `POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200000\r\nConnection: close\r\n\r\n${'a'.repeat(200_000)}`,
      ),
      /^HTTP\/1\.1 413 |^$/,
    );
    assert.equal((await page.goto(`${base}/domain/a.test`))?.status(), 200);
    assert.equal(webdPid(root), pid, 'the web process was not replaced');
    assert.doesNotMatch(log(), /webd\.crashed/);
    if (process.getuid?.() === 0) {
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      assert.notEqual(Number(uid), 0, 'root parses no HTTP');
    }
  } finally {
    await browser.close();
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});

void test('web admin over HTTPS (tls=implicit, servercert.pem): the session cookie is __Host-, Secure, HttpOnly, Strict', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-webtls-'));
  const r = ['--root', root];
  let q: QuailProcess | undefined;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  try {
    chmodSync(root, 0o755);
    quail(['init', ...r, '--me', 'mx.webtls.test']);
    assert.ok(existsSync(join(root, 'control', 'servercert.pem')), 'quail init made a certificate');
    quail(['domain', 'add', 'a.test', ...r]);
    quail(['user', 'add', 'joe@a.test', '--password', 'joe secret', ...r]);
    const web = await freePort();
    writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:0 smtp\n127.0.0.1:${web} admin tls=implicit\n`);
    q = await startProcess(root);
    // the certificate is quail init's own (self-signed): the test trusts it, as an administrator would pin it
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`https://127.0.0.1:${web}/login`);
    await page.getByLabel('Mailbox address').fill('joe@a.test');
    await page.getByLabel('Password').fill('joe secret');
    await page.getByRole('button', { name: 'Log in' }).click();
    // a user without domains: the home page says so and links to its own mailbox
    await page.getByRole('link', { name: 'Your mailbox' }).click();
    await page.getByRole('heading', { name: 'joe@a.test' }).waitFor();
    const session = (await context.cookies()).find((c) => c.name === '__Host-quail');
    assert.ok(session, 'the session cookie');
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    // the user's own forward, through the root parent; seen by the command line
    await page.getByLabel(/Forward my mail to/).fill('joe@elsewhere.test');
    await page.getByRole('button', { name: 'Save forwarding' }).click();
    await page.getByRole('status').filter({ hasText: 'forwarded to joe@elsewhere.test' }).waitFor();
    assert.match(quail(['user', 'info', 'joe@a.test', ...r]), /forward: {3}joe@elsewhere\.test/);
    // plain HTTP or garbage on the TLS port: the connection closes, the web process stays
    const pid = webdPid(root);
    assert.doesNotMatch(await raw(web, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /HTTP\/1\.1 200/);
    assert.equal((await page.goto(`https://127.0.0.1:${web}/me`))?.status(), 200);
    assert.equal(webdPid(root), pid);
  } finally {
    await browser.close();
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});

/** One HTTP request to 127.0.0.1:port; the status, the Set-Cookie lines and the body. */
function http(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; cookies: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cookies: res.headers['set-cookie'] ?? [], body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

void test('web admin behind a TLS proxy (proxy=yes): Secure cookies, the client address from X-Forwarded-For', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-webproxy-'));
  const r = ['--root', root];
  let q: QuailProcess | undefined;
  try {
    chmodSync(root, 0o755);
    quail(['init', ...r, '--me', 'mx.webproxy.test']);
    quail(['domain', 'add', 'a.test', ...r]);
    quail(['user', 'add', 'joe@a.test', '--password', 'joe secret', ...r]);
    const web = await freePort();
    writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:0 smtp\n127.0.0.1:${web} admin proxy=yes\n`);
    q = await startProcess(root);
    const form = await http(web, '/login');
    const pre = /name="pre" value="([^"]+)"/.exec(form.body)?.[1] ?? '';
    const preCookie = form.cookies.find((c) => c.startsWith('__Host-quail-pre=')) ?? '';
    assert.match(preCookie, /; Secure/);
    const login = await http(web, '/login', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: preCookie.split(';')[0] ?? '',
        // what nginx's $proxy_add_x_forwarded_for makes: the client's claim, then the address the proxy saw
        'x-forwarded-for': '198.51.100.1, 203.0.113.7',
      },
      body: new URLSearchParams({ pre, login: 'joe@a.test', password: 'joe secret' }).toString(),
    });
    assert.equal(login.status, 303);
    const session = login.cookies.find((c) => c.startsWith('__Host-quail=')) ?? '';
    assert.match(session, /; Secure/);
    assert.match(session, /; HttpOnly/);
    assert.match(session, /; SameSite=Strict/);
    await waitFor(
      () => /web\.login login=joe@a\.test ip=203\.0\.113\.7 result=ok/.test(q?.log() ?? ''),
      10_000,
      () => q?.log() ?? '',
    );
  } finally {
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
