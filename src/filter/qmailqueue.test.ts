// runQmailQueue against small /bin/sh programs: what they see on fd 0 and fd 1, and what each exit becomes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { QuailError } from '../core/index.js';
import { MAIN } from '../../test/support/start.js';
import { parseEnvelope } from './queue-inject.js';
import { encodeEnvelope, qmailQueueExit, runQmailQueue } from './qmailqueue.js';

const dir = mkdtempSync(join(tmpdir(), 'quail-qq-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function program(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

const msg = { sender: 'a@x.test', recipients: ['b@y.test', 'c@z.test'] };
const opts = { env: { PATH: '/usr/bin:/bin', MARK: 'seen' }, timeoutMs: 20_000 };

async function refusedWith(p: Promise<unknown>): Promise<QuailError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof QuailError, String(err));
    return err;
  }
  assert.fail('the program was expected to refuse');
}

void test('the program reads the message on fd 0 and the envelope on fd 1, with the environment given', async () => {
  const out = join(dir, 'seen');
  const prog = program('record', `cat > ${out}.msg; cat <&1 > ${out}.env; echo "$MARK" > ${out}.mark`);
  const r = await runQmailQueue(prog, { ...msg, data: Readable.from([Buffer.from('Subject: hi\n\nbody\n')]) }, opts);
  assert.ok(r.pid > 0);
  assert.equal(readFileSync(`${out}.msg`, 'latin1'), 'Subject: hi\n\nbody\n');
  assert.equal(readFileSync(`${out}.env`, 'latin1'), 'Fa@x.test\0Tb@y.test\0Tc@z.test\0\0');
  assert.equal(readFileSync(`${out}.mark`, 'latin1'), 'seen\n');
});

void test('exit codes follow qmail.c: 31 permanent, 71 temporary, 11–40 permanent, others temporary', async () => {
  const e31 = await refusedWith(runQmailQueue(program('e31', 'exit 31'), { ...msg, data: Buffer.from('x\n') }, opts));
  assert.equal(e31.temporary, false);
  assert.equal(e31.message, 'mail server permanently rejected message (#5.3.0)');
  const e71 = await refusedWith(runQmailQueue(program('e71', 'exit 71'), { ...msg, data: Buffer.from('x\n') }, opts));
  assert.equal(e71.temporary, true);
  assert.equal(e71.code, '4.3.0');
  assert.deepEqual(qmailQueueExit(11), { permanent: true, text: 'envelope address too long for qq (#5.1.3)' });
  assert.deepEqual(qmailQueueExit(35), { permanent: true, text: 'qq permanent problem (#5.3.0)' });
  assert.deepEqual(qmailQueueExit(41), { permanent: false, text: 'qq temporary problem (#4.3.0)' });
  assert.deepEqual(qmailQueueExit(74), { permanent: false, text: 'communication with mail server failed (#4.4.2)' });
  assert.deepEqual(qmailQueueExit(91), { permanent: false, text: 'qq internal bug (#4.3.0)' });
});

void test("the program's own text on fd 4 (D permanent, Z temporary) replaces the table's", async () => {
  const d = await refusedWith(
    runQmailQueue(
      program('d', "printf 'Dvirus found: Eicar-Test (#5.7.1)' >&4; exit 82"),
      { ...msg, data: Buffer.from('x\n') },
      opts,
    ),
  );
  assert.equal(d.temporary, false);
  assert.equal(d.message, 'virus found: Eicar-Test (#5.7.1)');
  assert.equal(d.code, '5.7.1');
  const z = await refusedWith(
    runQmailQueue(program('z', "printf 'Zscanner busy' >&4; exit 31"), { ...msg, data: Buffer.from('x\n') }, opts),
  );
  assert.equal(z.temporary, true);
  assert.equal(z.message, 'scanner busy');
  // garbage on fd 4 is ignored: the exit code's text
  const g = await refusedWith(
    runQmailQueue(program('g', "printf 'garbage' >&4; exit 31"), { ...msg, data: Buffer.from('x\n') }, opts),
  );
  assert.equal(g.message, 'mail server permanently rejected message (#5.3.0)');
});

void test('a program that hangs is killed with what it started, and the refusal is temporary', async () => {
  const pidFile = join(dir, 'hang.pid');
  const prog = program('hang', `sleep 3598 & echo $! > ${pidFile}; wait`);
  const e = await refusedWith(runQmailQueue(prog, { ...msg, data: Buffer.from('x\n') }, { ...opts, timeoutMs: 300 }));
  assert.equal(e.temporary, true);
  assert.equal(e.message, 'qq timeout (#4.3.0)');
  const sleeper = Number(readFileSync(pidFile, 'latin1'));
  // the sleep was in the killed process group; give the kernel a moment to reap it
  for (let i = 0; i < 100 && existsSync(`/proc/${sleeper}`) && !isZombie(sleeper); i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.ok(!existsSync(`/proc/${sleeper}`) || isZombie(sleeper), "the filter's child was killed");
});

function isZombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return true;
  }
}

void test('a missing program and one that exits early without reading are temporary refusals, not crashes', async () => {
  const missing = await refusedWith(runQmailQueue(join(dir, 'nope'), { ...msg, data: Buffer.from('x\n') }, opts));
  assert.equal(missing.temporary, true);
  assert.equal(missing.message, 'unable to exec qq (#4.3.0)');
  const big = Readable.from(
    (function* () {
      for (let i = 0; i < 200; i++) yield Buffer.alloc(65536, 0x61);
    })(),
  );
  const early = await refusedWith(runQmailQueue(program('early', 'exit 71'), { ...msg, data: big }, opts));
  assert.equal(early.temporary, true);
});

void test("envelopes: the encoding and queue-inject's reading of it (golden table)", () => {
  assert.equal(encodeEnvelope('', ['x@y']).toString('latin1'), 'F\0Tx@y\0\0');
  const table: Array<[string, ReturnType<typeof parseEnvelope>]> = [
    ['Fa@b\0Tc@d\0\0', { sender: 'a@b', recipients: ['c@d'] }],
    ['F\0Tc@d\0Te@f\0\0', { sender: '', recipients: ['c@d', 'e@f'] }],
    ['Fa@b\0\0', 'the envelope has no recipient'],
    ['a@b\0Tc@d\0\0', 'the envelope does not start with F'],
    ['Fa@b\0Tc@d\0', 'the envelope is not ended by an empty field'],
    ['Fa@b\0Xc@d\0\0', 'field 2 does not start with T'],
    ['Fa@b', 'the sender is not ended by NUL'],
    ['Fa@b\0Tc@d', 'a recipient is not ended by NUL'],
  ];
  for (const [input, want] of table)
    assert.deepEqual(parseEnvelope(Buffer.from(input, 'latin1')), want, JSON.stringify(input));
});

void test('quail inject with QMAILQUEUE hands the rewritten message and envelope to the program; 31 → exit 100, 71 → 111', () => {
  const out = join(dir, 'inj');
  const prog = program('inj', `cat > ${out}.msg; cat <&1 > ${out}.env; exit "\${QQ_EXIT:-0}"`);
  const run = (exitCode: string): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [MAIN, 'inject', '-f', 'a@x.test', 'b@y.test'], {
      input: 'Subject: via inject\n\nbody\n',
      env: {
        ...process.env,
        QMAILQUEUE: prog,
        QQ_EXIT: exitCode,
        QMAILHOST: 'x.test',
        QUAIL_ROOT: join(dir, 'no-root'),
      },
      encoding: 'latin1',
    });
  const ok = run('0');
  assert.equal(ok.status, 0, String(ok.stderr));
  assert.equal(readFileSync(`${out}.env`, 'latin1'), 'Fa@x.test\0Tb@y.test\0\0');
  assert.match(readFileSync(`${out}.msg`, 'latin1'), /^Subject: via inject$/m);
  const refused = run('31');
  assert.equal(refused.status, 100);
  assert.match(String(refused.stderr), /mail server permanently rejected message \(#5\.3\.0\)/);
  assert.equal(run('71').status, 111);
});
