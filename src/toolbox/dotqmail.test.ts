// tier: system (needs quail start, swaks)
// Real .qmail files calling qmail's helper programs by plain name, delivered through a running `quail start`.
import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listenerPort,
  queuedCount,
  setupRoot,
  startProcess,
  swaks,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

void test('.qmail lines |preline, |condredirect, |bouncesaying, |except and |forward work unchanged under quail start', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-dotqmail-'));
  chmodSync(root, 0o755);
  setupRoot(root, 'mx.example.com', [{ domain: 'example.com', boxes: ['joe', 'ann', 'boss', 'list'] }]);
  const home = join(root, 'domains', 'example.com');
  const dotqmail = (name: string, text: string): void => {
    writeFileSync(join(home, `.qmail-${name}`), text, { mode: 0o644 });
  };
  // As they are written for qmail: programs by plain name, found in the delivery PATH (<root>/bin first).
  dotqmail(
    'joe',
    '|condredirect boss@example.com grep -q "^Subject: urgent"\n' +
      "|preline sh -c 'cat > ./joe/preline.out'\n" +
      './joe/Maildir/\n',
  );
  dotqmail('closed', '|bouncesaying "This address is closed; write to ann@example.com."\n');
  dotqmail('list', '|except sh -c \'grep -q "^Subject: spam" && exit 0; exit 100\'\n./list/Maildir/\n');
  dotqmail('fwd', '|forward ann@example.com boss@example.com\n');
  assert.ok(existsSync(join(root, 'bin', 'preline')), 'quail init wrote <root>/bin');

  let q: QuailProcess | undefined;
  try {
    q = await startProcess(root);
    const port = listenerPort(root, 'smtp');
    const send = (to: string, subject: string): void => {
      const r = swaks(
        port,
        ['--to', to, '--header', `Subject: ${subject}`, '--body', `about ${subject}`],
        'ann@example.com',
      );
      assert.equal(r.status, 0, r.out);
    };
    send('joe@example.com', 'normal');
    send('joe@example.com', 'urgent');
    send('closed@example.com', 'hello');
    send('list@example.com', 'spam');
    send('list@example.com', 'weekly');
    send('fwd@example.com', 'passed on');

    const box = (name: string): string[] => {
      const dir = join(home, name, 'Maildir', 'new');
      return readdirSync(dir).map((f) => readFileSync(join(dir, f), 'latin1'));
    };
    const log = (): string => `${q?.log() ?? ''}\nqueue: ${queuedCount(root)}`;
    // ann: two bounces and the forwarded copy; boss: the urgent one and the forwarded copy.
    await waitFor(() => box('ann').length >= 3 && box('boss').length >= 2 && queuedCount(root) === 0, 60_000, log);

    const joe = box('joe');
    assert.equal(joe.length, 1, 'condredirect exited 99: the urgent message skipped the rest of .qmail-joe');
    assert.match(joe[0] ?? '', /\nSubject: normal\n/);
    const pre = readFileSync(join(home, 'joe', 'preline.out'), 'latin1');
    assert.match(
      pre,
      /^From ann@example\.com \w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4}\nReturn-Path: <ann@example\.com>\nDelivered-To: example\.com-joe@example\.com\n/,
    );
    assert.match(pre, /\nSubject: normal\n/);

    const boss = box('boss');
    const urgent = boss.find((m) => m.includes('Subject: urgent'));
    assert.ok(urgent, 'condredirect forwarded the urgent message');
    assert.match(urgent, /Delivered-To: example\.com-joe@example\.com\n/);
    assert.match(urgent, /^Return-Path: <ann@example\.com>\n/, 'condredirect keeps $SENDER');
    assert.ok(
      boss.some((m) => m.includes('Subject: passed on') && m.includes('Delivered-To: example.com-fwd@example.com\n')),
    );

    const ann = box('ann');
    const closed = ann.find((m) => m.includes('closed@example.com>:'));
    assert.ok(closed, `a bounce for closed@: ${ann.join('\n----\n')}`);
    assert.match(closed, /This address is closed; write to ann@example\.com\./);
    assert.match(closed, /^Return-Path: <>\n/);
    const spam = ann.find((m) => m.includes('list@example.com>:'));
    assert.ok(spam, "except turned the filter's 0 into a bounce");
    assert.match(spam, /Subject: spam/);
    const copy = ann.find((m) => m.includes('Subject: passed on'));
    assert.ok(copy, 'forward queued a copy for ann');
    assert.match(copy, /^Return-Path: <ann@example\.com>\n/);

    const list = box('list');
    assert.equal(list.length, 1, "except turned the filter's 100 into 0: the delivery went on");
    assert.match(list[0] ?? '', /\nSubject: weekly\n/);
  } finally {
    q?.killGroup();
    await q?.exited;
    rmSync(root, { recursive: true, force: true });
  }
});
