// The vacation reply end to end (RFC 3834): set in the web admin, answered once per sender, never to lists or bounces.
// tier: system (needs quail start, swaks, chromium)
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

void test('vacation: set on the user page; one reply per sender, none to list mail or bounces', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-vacation-'));
  const r = ['--root', root];
  let q: QuailProcess | undefined;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  try {
    chmodSync(root, 0o755);
    quail(['init', ...r, '--me', 'mx.vacation.test']);
    for (const d of ['a.test', 'b.test']) quail(['domain', 'add', d, ...r]);
    quail(['user', 'add', 'joe@a.test', '--password', 'joe secret', ...r]);
    quail(['user', 'add', 'bea@b.test', '--password', 'bea secret', ...r]);
    const web = await freePort();
    writeFileSync(join(root, 'control', 'listeners'), `127.0.0.1:0 smtp\n127.0.0.1:${web} admin\n`);
    q = await startProcess(root);
    const log = (): string => q?.log() ?? '';
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${web}/login`);
    await page.getByLabel('Mailbox address').fill('joe@a.test');
    await page.getByLabel('Password').fill('joe secret');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.goto(`http://127.0.0.1:${web}/me`);
    await page.getByLabel('Answer mail while I am away').check();
    await page.getByLabel('Message').fill('Away until Monday.');
    await page.getByRole('button', { name: 'Save vacation reply' }).click();
    await page.getByRole('status').filter({ hasText: 'vacation reply on for joe@a.test' }).waitFor();

    const smtp = listenerPort(root, 'smtp');
    const send = (from: string, extra: string[] = []): void => {
      const s = swaks(smtp, ['--to', 'joe@a.test', ...extra], from);
      assert.equal(s.status, 0, s.out);
    };
    send('bea@b.test');
    const beaNew = join(root, 'domains', 'b.test', 'bea', 'Maildir', 'new');
    await waitFor(() => existsSync(beaNew) && readdirSync(beaNew).length === 1, 30_000, log);
    const reply = readFileSync(join(beaNew, readdirSync(beaNew)[0] ?? ''), 'utf8');
    assert.match(reply, /^Return-Path: <>$/m, 'sent with the null sender');
    assert.match(reply, /^Auto-Submitted: auto-replied$/m);
    assert.match(reply, /^From: <joe@a\.test>$/m);
    assert.match(reply, /^In-Reply-To: <.+>$/m);
    assert.match(reply, /Away until Monday\./);
    // the same sender again: no second reply in the period
    send('bea@b.test');
    await waitFor(() => /vacation: no reply, bea@b\.test had one within 7 days/.test(log()), 30_000, log);
    // list mail and bounces: never
    send('ann@b.test', ['--add-header', 'Precedence: list']);
    await waitFor(() => /vacation: no reply, bulk or list mail/.test(log()), 30_000, log);
    send('<>');
    await waitFor(() => /vacation: no reply, a bounce/.test(log()), 30_000, log);
    assert.equal(readdirSync(beaNew).length, 1, 'bea got one reply');
    // off again: no line at all for the next message
    await page.reload();
    await page.getByLabel('Answer mail while I am away').uncheck();
    await page.getByRole('button', { name: 'Save vacation reply' }).click();
    await page.getByRole('status').filter({ hasText: 'no vacation reply for joe@a.test' }).waitFor();
    assert.match(quail(['user', 'info', 'joe@a.test', '--json', ...r]), /"vacation": null/);
  } finally {
    await browser.close();
    q?.child.kill('SIGTERM');
    await q?.exited;
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
