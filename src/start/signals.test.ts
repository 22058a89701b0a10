// SIGUSR1 and SIGUSR2 sent to every process of quail start: ignored. Node.js would open its debugger on SIGUSR1 (a
// tier: system (needs quail start)
// port on 127.0.0.1 that runs any code it is sent, as root in the supervisor) and SIGUSR2 would end the process.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  listenerPort,
  listeningHeldBy,
  processGroup,
  setupRoot,
  sleep,
  smtpLockstep,
  startProcess,
  waitFor,
  type QuailProcess,
} from '../../test/support/start.js';

const send = (port: number, subject: string): Promise<string> =>
  smtpLockstep(port, [
    'EHLO client.test',
    'MAIL FROM:<a@client.test>',
    'RCPT TO:<box@sig.test>',
    'DATA',
    `Subject: ${subject}\r\n\r\nbody\r\n.`,
    'QUIT',
  ]);

/** Alive and not a zombie. */
const running = (pid: number): boolean =>
  existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

void test('SIGUSR1 and SIGUSR2 to every quail process: ignored, no debugger port opens, mail still flows', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-signals-'));
  let q: QuailProcess | undefined;
  try {
    setupRoot(root, 'mx.sig.test', [{ domain: 'sig.test', boxes: ['box'] }]);
    q = await startProcess(root);
    const port = listenerPort(root, 'smtp');
    const newDir = join(root, 'domains', 'sig.test', 'box', 'Maildir', 'new');
    const delivered = (): number => readdirSync(newDir).length;
    // one message first, so that a delivery worker runs too
    assert.match(await send(port, 'before'), /\r\n250 [^\r]*\r\n221 /);
    await waitFor(
      () => delivered() === 1,
      30_000,
      () => `not delivered:\n${q?.log() ?? ''}`,
    );

    const pids = processGroup(q.child.pid ?? 0);
    assert.ok(pids.length >= (process.getuid?.() === 0 ? 4 : 1), `quail's processes: ${pids.join(' ')}`);
    const listening = listeningHeldBy(pids);
    for (const sig of ['SIGUSR1', 'SIGUSR2'] as const) for (const pid of pids) process.kill(pid, sig);
    await waitFor(
      () =>
        /quail\.ignored signal=SIGUSR1/.test(q?.log() ?? '') && /quail\.ignored signal=SIGUSR2/.test(q?.log() ?? ''),
      10_000,
      () => `no quail.ignored for both signals:\n${q?.log() ?? ''}`,
    );
    await sleep(1000); // the inspector opens its port within milliseconds of the signal
    assert.deepEqual(
      pids.filter((p) => !running(p)),
      [],
      `a process ended on SIGUSR1 or SIGUSR2:\n${q.log()}`,
    );
    assert.deepEqual(listeningHeldBy(pids), listening, 'a process opened a listening socket (the debugger)');
    assert.doesNotMatch(q.log(), /Debugger listening/);

    assert.match(await send(port, 'after'), /\r\n250 [^\r]*\r\n221 /);
    await waitFor(
      () => delivered() === 2,
      30_000,
      () => `not delivered after the signals:\n${q?.log() ?? ''}`,
    );
  } finally {
    q?.killGroup();
    await q?.exited;
    rmSync(root, { recursive: true, force: true });
  }
});
