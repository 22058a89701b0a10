// Issue 3's crash test: quail start SIGKILLed (with its workers) at random moments while thousands of messages arrive; zero loss.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  crashMessage,
  crashRecipient,
  queuedCount,
  setupRoot,
  sleep,
  spawnQuail,
  startProcess,
  waitFor,
} from '../../test/support/start.js';

const INJECTOR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'support', 'crash-inject.js');
const COUNT = 2000;
const KILLS = 5;
const BOXES = Array.from({ length: 10 }, (_, i) => `u${i}`);

/** What a Maildir file must be: Return-Path, Delivered-To, the queue's Received line, then the message as injected. */
const HEAD =
  /^Return-Path: <crash@test>\nDelivered-To: (d[01]\.test)-(u\d)@(d[01]\.test)\nReceived: \(qmail \d+ invoked by uid \d+\); [^\n]+\n$/;

void test('crash: quail start SIGKILLed with its workers at random moments during 2000 injections; every acknowledged message delivered whole', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'quail-crash-start-'));
  const running: Array<ReturnType<typeof spawnQuail>> = [];
  let injector: ChildProcess | undefined;
  try {
    setupRoot(
      root,
      'mail.test',
      ['d0.test', 'd1.test'].map((domain) => ({ domain, boxes: BOXES })),
    );
    const inj = spawn(process.execPath, [INJECTOR, root, String(COUNT), '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
    injector = inj;
    const acked = new Set<number>();
    let buf = '';
    let injectorErr = '';
    inj.stdout.setEncoding('utf8');
    inj.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const m = /^ok (\d+) \S+$/.exec(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (m) acked.add(Number(m[1]));
      }
    });
    inj.stderr.on('data', (c: Buffer) => (injectorErr += c.toString()));
    const injected = new Promise<number | null>((r) => inj.on('exit', (code) => r(code)));

    let killedBeforeStart = 0;
    for (let round = 0; round < KILLS; round++) {
      const q = spawnQuail(root);
      running.push(q);
      // Half the rounds kill at any moment from spawn on (recovery included), the others after it has started.
      if (round % 2 === 1)
        await waitFor(() => q.log().includes('quail.started') || q.child.exitCode !== null, 30_000, q.log);
      await sleep(100 + Math.floor(Math.random() * 1400));
      if (!q.log().includes('quail.started')) killedBeforeStart++;
      q.killGroup();
      await q.exited;
    }
    const t0 = Date.now();
    assert.equal(await injected, 0, `injector failed: ${injectorErr}`);
    assert.equal(acked.size, COUNT);

    // The final run: until the queue is empty (SIGALRM now and then retries what a kill left deferred).
    const last = await startProcess(root);
    running.push(last);
    await waitFor(
      () => {
        if (queuedCount(root) === 0) return true;
        last.child.kill('SIGALRM');
        return false;
      },
      45_000,
      () => `queue not empty: ${queuedCount(root)} left\n${last.log().slice(-3000)}`,
      500,
    );
    const tEmpty = Date.now();
    last.child.kill('SIGTERM');
    assert.deepEqual(await last.exited, { code: 0, signal: null }, last.log().slice(-3000));

    // Every file in every new/ is one whole message exactly as injected; count each message's copies.
    const copies = new Map<number, number>();
    let tmpLeft = 0;
    for (const domain of ['d0.test', 'd1.test']) {
      for (const box of BOXES) {
        const md = join(root, 'domains', domain, box, 'Maildir');
        tmpLeft += readdirSync(join(md, 'tmp')).length;
        for (const name of readdirSync(join(md, 'new'))) {
          const file = readFileSync(join(md, 'new', name));
          const m = /\nSubject: crash (\d+)\n/.exec(file.toString('latin1'));
          assert.ok(m, `${domain}/${box}/new/${name} has no crash Subject: not a whole message`);
          const n = Number(m[1]);
          const want = crashMessage(n);
          assert.ok(
            file.length > want.length && file.subarray(file.length - want.length).equals(want),
            `${domain}/${box}/new/${name}: message ${n} truncated or altered`,
          );
          const head = HEAD.exec(file.subarray(0, file.length - want.length).toString('latin1'));
          assert.ok(head, `${domain}/${box}/new/${name}: trace lines`);
          assert.equal(`${head[2]}@${head[3]}`, crashRecipient(n), `message ${n} in the wrong mailbox`);
          assert.equal(head[1], head[3]);
          copies.set(n, (copies.get(n) ?? 0) + 1);
        }
      }
    }
    const lost = [...acked].filter((n) => !copies.has(n));
    assert.deepEqual(lost, [], `acknowledged but never delivered: ${lost.length}`);
    const dups = [...copies.values()].filter((c) => c > 1).length;
    const extra = [...copies.values()].reduce((a, c) => a + c - 1, 0);
    t.diagnostic(
      `${acked.size} acknowledged, all delivered; ${KILLS} SIGKILLs (${killedBeforeStart} before quail.started); ` +
        `duplicates (at-least-once): ${dups} messages, ${extra} extra copies; ${tmpLeft} files left in Maildir tmp/; ` +
        `final run ${((tEmpty - t0) / 1000).toFixed(1)} s`,
    );
  } finally {
    if (injector?.exitCode === null) injector.kill('SIGKILL');
    for (const q of running) q.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
