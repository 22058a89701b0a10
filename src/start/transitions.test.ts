// Start, SIGHUP, a child's death and stop while clients connect without pause: nothing hangs, nothing is lost.
// tier: system (needs quail start)
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, MAIN, quail } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';
import { bootId } from '../queue/journal.js';

const asRoot = process.getuid?.() === 0;

type Outcome = 'refused' | 'queued' | 'rejected' | 'hung';

/** One SMTP conversation; every step has a deadline, so a held connection shows up as 'hung', not as a stuck test. */
function trySend(
  port: number,
  subject: string,
  to: string,
  deadlineMs = 25_000,
): Promise<{ outcome: Outcome; transcript: string }> {
  return new Promise((resolve) => {
    const lines = [
      'EHLO loop.test',
      'MAIL FROM:<loop@client.test>',
      `RCPT TO:<${to}>`,
      'DATA',
      `Subject: ${subject}\r\n\r\nsent during ${subject}\r\n.`,
      'QUIT',
    ];
    const s = connect({ host: '127.0.0.1', port });
    let out = '';
    let i = 0;
    let finished = false;
    const finish = (outcome: Outcome): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ outcome, transcript: out });
    };
    const timer = setTimeout(() => finish('hung'), deadlineMs);
    s.on('data', (c: Buffer) => {
      out += c.toString('latin1');
      if (!out.endsWith('\r\n')) return;
      const last = out.trimEnd().split('\r\n').pop() ?? '';
      if (/^250 (?:2\.0\.0 )?ok \d+ qp /.test(last)) return finish('queued');
      if (/^[45]\d\d /.test(last)) return finish('rejected');
      if (/^\d\d\d /.test(last) && i < lines.length) s.write(`${lines[i++] ?? ''}\r\n`);
    });
    s.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNREFUSED' ? 'refused' : 'rejected'));
    s.on('close', () => finish(out === '' ? 'refused' : 'rejected'));
  });
}

/** Sends until the message is queued (a refused or turned-away attempt is retried); every attempt is bounded. */
async function sendUntilQueued(port: number, subject: string, to: string, hung: string[]): Promise<void> {
  const end = Date.now() + 90_000;
  let last = '';
  while (Date.now() < end) {
    const r = await trySend(port, subject, to);
    if (r.outcome === 'queued') return;
    if (r.outcome === 'hung') hung.push(`${subject}: ${JSON.stringify(r.transcript)}`);
    last = `${r.outcome}: ${r.transcript}`;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`${subject}: never queued; last attempt ${last}`);
}

/** Connects every 20 ms until stopped: each connection must get a banner, a 421 or a refusal within its deadline. */
function connectionLoop(
  port: number,
  hung: string[],
): { stop: () => Promise<number>; mustAccept: (on: boolean) => void } {
  let accepting = false;
  let running = true;
  let count = 0;
  const done = (async () => {
    while (running) {
      // judged only when the whole connection falls between start and stop: one begun before quail listened (or
      // answered after the stop began) may rightly be refused, and is not a held or lost connection
      const judged = accepting;
      const r = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port });
        const timer = setTimeout(() => {
          s.destroy();
          resolve('hung');
        }, 20_000);
        const end = (v: string): void => {
          clearTimeout(timer);
          s.destroy();
          resolve(v);
        };
        s.once('data', (c: Buffer) => end(c.toString('latin1').slice(0, 3)));
        s.once('error', () => end('refused'));
        s.once('close', () => end('closed'));
      });
      count++;
      if (r === 'hung') hung.push(`loop connection ${count} got no banner within 20 s`);
      // between start and stop the port never refuses, even while a child is replaced
      if (judged && accepting && r !== '220') hung.push(`loop connection ${count} while running: ${r}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    return count;
  })();
  return {
    stop: async () => {
      running = false;
      return done;
    },
    mustAccept: (on) => {
      accepting = on;
    },
  };
}

function pop3Answers(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('hung');
    }, 20_000);
    s.once('data', (c: Buffer) => {
      clearTimeout(timer);
      s.end('QUIT\r\n');
      resolve(c.toString('latin1'));
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      resolve(`error ${err.message}`);
    });
  });
}

void test('start, SIGHUP, a child restart and stop under a connection loop: every queued message is delivered, nothing hangs', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-transitions-'));
  chmodSync(root, 0o755);
  const procs: ChildProcess[] = [];
  let log = '';
  let loop: ReturnType<typeof connectionLoop> | undefined;
  try {
    quail(['init', '--root', root, '--me', 'transitions.test']);
    const [smtp, submission, pop3] = [await freePort(), await freePort(), await freePort()];
    const to = 'postmaster@transitions.test';
    const newDir = join(root, 'alias', 'Maildir', 'new');
    const hung: string[] = [];
    const startQuail = (): { proc: ChildProcess; exited: Promise<number | null> } => {
      const proc = spawn(
        process.execPath,
        [
          MAIN,
          'start',
          '--root',
          root,
          '--smtp',
          `127.0.0.1:${smtp}`,
          '--submission',
          `127.0.0.1:${submission}`,
          '--pop3',
          `127.0.0.1:${pop3}`,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      procs.push(proc);
      proc.stdout?.on('data', (c: Buffer) => (log += c.toString()));
      proc.stderr?.on('data', (c: Buffer) => (log += c.toString()));
      return { proc, exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
    };
    const status = (): { code: number | null; out: string } => {
      const r = spawnSync(process.execPath, [MAIN, 'status', '--root', root], { encoding: 'utf8' });
      return { code: r.status, out: r.stdout };
    };
    const state = (): { smtpd?: { pid: number }; pop3d?: { pid: number } } =>
      JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
        smtpd?: { pid: number };
        pop3d?: { pid: number };
      };

    // 1. start, with the loop already knocking and a message waiting to go in
    loop = connectionLoop(smtp, hung);
    await new Promise((r) => setTimeout(r, 200));
    const first = startQuail();
    // a SIGHUP while starting (its default action would kill the process) is kept and acted on once running
    await waitFor(
      () => log.includes('queue.recovered') || log.includes('smtpd.started'),
      30_000,
      () => `start-up under way\n${log}`,
    );
    first.proc.kill('SIGHUP');
    await sendUntilQueued(smtp, 'transition-start', to, hung);
    await waitFor(
      () => log.includes('quail.started'),
      30_000,
      () => `quail.started\n${log}`,
    );
    await waitFor(
      () => log.split('quail.reloaded').length === 2,
      30_000,
      () => `the early SIGHUP acted on\n${log}`,
    );
    loop.mustAccept(true);
    assert.equal(status().code, 0, status().out);
    assert.match(status().out, /quail is running/);
    assert.match(await pop3Answers(pop3), /^\+OK/);

    // 2. SIGHUP while sending
    first.proc.kill('SIGHUP');
    await sendUntilQueued(smtp, 'transition-hup', to, hung);
    await waitFor(
      () => log.split('quail.reloaded').length === 3,
      30_000,
      () => `reload\n${log}`,
    );
    assert.match(await pop3Answers(pop3), /^\+OK/);
    // the SMTP child commits through the group commit's journal (docs/QUEUE.md): a segment of its own holds the
    // message just acknowledged (a segment lives at least 2 s after its last record), and stands for its directory
    // entries too (the boot id in its name)
    const segments = readdirSync(join(root, 'queue', 'journal'));
    assert.ok(
      segments.some((n) => n.startsWith(`${state().smtpd?.pid}.`) && n.endsWith(`.${bootId()}.jnl`)),
      `a journal segment of the SMTP child: ${segments.join(' ')}`,
    );

    // 3. the SMTP and POP3 children killed (as root: they are separate processes), a message sent at once
    if (asRoot) {
      const before = state();
      process.kill(before.smtpd?.pid ?? 0, 'SIGKILL');
      process.kill(before.pop3d?.pid ?? 0, 'SIGKILL');
      await sendUntilQueued(smtp, 'transition-restart', to, hung);
      assert.match(await pop3Answers(pop3), /^\+OK/);
      await waitFor(
        () => {
          const s = state();
          return s.smtpd?.pid !== before.smtpd?.pid && s.pop3d?.pid !== before.pop3d?.pid;
        },
        30_000,
        () => `new children recorded\n${log}`,
      );
      assert.match(status().out, /crashes since start: .*smtpd 1/);
    }

    // 4. stop while sending: a message is either queued (and delivered after the next start) or refused, never held
    loop.mustAccept(false);
    const during = trySend(smtp, 'transition-stop', to);
    first.proc.kill('SIGTERM');
    assert.equal(await first.exited, 0, log);
    const stopResult = await during;
    assert.notEqual(stopResult.outcome, 'hung', stopResult.transcript);
    assert.equal(existsSync(join(root, 'run', 'quail.pid')), false);
    assert.deepEqual(readdirSync(join(root, 'queue', 'journal')), [], 'a clean stop retires the journal');

    // 5. start again: what was queued during the stop is delivered too
    const second = startQuail();
    await waitFor(
      () => log.split('quail.started').length === 3,
      30_000,
      () => `restarted\n${log}`,
    );
    await sendUntilQueued(smtp, 'transition-after', to, hung);
    const want = [
      'transition-start',
      'transition-hup',
      ...(asRoot ? ['transition-restart'] : []),
      'transition-after',
      ...(stopResult.outcome === 'queued' ? ['transition-stop'] : []),
    ];
    const delivered = (): string[] =>
      (existsSync(newDir) ? readdirSync(newDir) : []).map(
        (f) => /^Subject: (\S+)$/m.exec(readFileSync(join(newDir, f), 'latin1'))?.[1] ?? '',
      );
    await waitFor(
      () => want.every((w) => delivered().includes(w)),
      30_000,
      () => `every queued message delivered\n${delivered().join(',')}\n${log}`,
    );
    const connections = await loop.stop();
    assert.ok(connections > 20, `the loop ran (${connections} connections)`);
    assert.deepEqual(hung, [], 'no connection was held without an answer');
    second.proc.kill('SIGTERM');
    assert.equal(await second.exited, 0, log);
    assert.doesNotMatch(log, /Unhandled|TypeError|ReferenceError/);
  } finally {
    void loop?.stop(); // a failed assertion must end the test, not leave the loop connecting forever
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
