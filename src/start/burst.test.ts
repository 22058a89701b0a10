// As root: a burst of messages, many queued in the same moment, is delivered at once — root names each queued message to the send child, and none may be lost when several are named in one turn.
// tier: system (needs quail start as root, Postfix's smtp-source)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, setupRoot, startProcess, waitFor, type QuailProcess } from '../../test/support/start.js';

const MESSAGES = 400;
const SESSIONS = 30;

void test(
  `a burst of ${MESSAGES} messages over ${SESSIONS} sessions at once: every one is delivered long before the periodic scan`,
  { skip: process.getuid?.() !== 0 ? 'needs root (the send child)' : false },
  async () => {
    const root = mkdtempSync(join(tmpdir(), 'quail-burst-'));
    let q: QuailProcess | undefined;
    try {
      setupRoot(root, 'mx.burst.test', [{ domain: 'burst.test', boxes: ['box'] }]);
      // every session from 127.0.0.1: room for all of them (the default maxperip=20 also counts sessions just closed);
      // authcheck=off: no SPF/DKIM lookups to wait for, as this machine has no DNS
      const port = await freePort();
      writeFileSync(
        join(root, 'control', 'listeners'),
        `127.0.0.1:${port} smtp maxconn=500 maxperip=500 authcheck=off\n`,
      );
      q = await startProcess(root, 30_000, {}, false);
      // one message per session, SESSIONS sessions at a time: the SMTP process queues several in one moment, and root
      // hears of several in one event-loop turn
      const source = spawn(
        '/usr/sbin/smtp-source',
        [
          '-s',
          String(SESSIONS),
          '-m',
          String(MESSAGES),
          '-l',
          '1024',
          '-f',
          'a@client.test',
          '-t',
          'box@burst.test',
        ].concat(`127.0.0.1:${port}`),
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let said = '';
      source.stderr?.on('data', (c: Buffer) => (said += c.toString('latin1')));
      const code = await new Promise<number | null>((r) => source.on('exit', (c) => r(c)));
      assert.equal(code, 0, `smtp-source sent every message: ${said}`);
      const log = q.log;
      const queued = (): number => (log().match(/ smtp\.queued /g) ?? []).length;
      await waitFor(
        () => queued() === MESSAGES,
        20_000,
        () => `queued ${queued()} of ${MESSAGES}\n${log()}`,
      );
      // The periodic scan comes 1,500 s after the last: a message whose note was lost would wait for it.
      const newDir = join(root, 'domains', 'burst.test', 'box', 'Maildir', 'new');
      await waitFor(
        () => readdirSync(newDir).length === MESSAGES,
        60_000,
        () => `delivered ${readdirSync(newDir).length} of ${MESSAGES}\n${log().slice(-4000)}`,
      );
    } finally {
      q?.killGroup();
      await q?.exited;
      rmSync(root, { recursive: true, force: true });
    }
  },
);
