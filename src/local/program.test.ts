// runProgram: /bin/sh in the home with umask 077, and bytes of 0x80 and above given to the program as one byte each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROGRAM_OUTPUT_LIMIT, runProgram, shellCall, watchPrograms, type OutputChunk } from './program.js';

function withHome(fn: (home: string, message: string) => Promise<void>): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'quail-program-'));
  const message = join(home, 'message');
  writeFileSync(message, 'Subject: x\n\nbody\n');
  return fn(home, message).finally(() => rmSync(home, { recursive: true, force: true }));
}

void test('a Latin-1 byte in the environment or the command reaches the program as that one byte (qmail-local)', () =>
  withHome(async (home, messagePath) => {
    const env = {
      PATH: '/usr/bin:/bin',
      SENDER: 'jos\u00e9@origin.test',
      RPLINE: 'Return-Path: <"a\\\\c\u00ff"@origin.test>\n',
      DTLINE: 'Delivered-To: qoalice-\u00e9@local.test\n',
      LOCAL: 'qoalice',
    };
    const out: OutputChunk[] = [];
    const r = await runProgram('printf "%s|" "$SENDER" "$RPLINE" "$DTLINE" "$LOCAL" \u00e9 > out; umask; cat', {
      home,
      env,
      messagePath,
      onOutput: (c) => out.push(c),
    });
    assert.deepEqual(r, { kind: 'exit', code: 0 });
    assert.deepEqual(
      readFileSync(join(home, 'out')),
      Buffer.from(
        'jos\u00e9@origin.test|Return-Path: <"a\\\\c\u00ff"@origin.test>\n|Delivered-To: qoalice-\u00e9@local.test\n|' +
          'qoalice|\u00e9|',
        'latin1',
      ),
    );
    assert.equal(Buffer.concat(out.map((c) => c.data)).toString('latin1'), '0077\nSubject: x\n\nbody\n');
  }));

void test('shellCall: plain ASCII keeps the plain wrapper and the environment as given', () => {
  const env = { PATH: '/bin', SENDER: 'a@b' };
  const c = shellCall('echo hi', env);
  assert.equal(c.env, env);
  assert.deepEqual(c.args.slice(2), ['sh', 'echo hi']);
  const raw = shellCall('echo \u00e9\\', env);
  assert.deepEqual(raw.args.slice(2), ['sh', 'echo \\0351\\\\']);
});

void test('a program that writes without end: only the first 64 KiB of its output is kept, and it is never blocked', () =>
  withHome(async (home, message) => {
    const out: OutputChunk[] = [];
    // 20 MB on stdout and 1 MB on stderr, then a line that must not be kept; exit 0 only if every write got through
    const r = await runProgram('head -c 20000000 /dev/zero && head -c 1000000 /dev/zero >&2 && echo tail', {
      home,
      env: { PATH: '/usr/bin:/bin' },
      messagePath: message,
      onOutput: (c) => out.push(c),
    });
    assert.deepEqual(r, { kind: 'exit', code: 0 });
    const kept = out.reduce((n, c) => n + c.data.length, 0);
    assert.equal(kept, PROGRAM_OUTPUT_LIMIT);
    assert.ok(!Buffer.concat(out.map((c) => c.data)).includes('tail'));
  }));

void test('a program runs its command only once its group is reported; one that cannot be reported never runs it', () =>
  withHome(async (home, messagePath) => {
    const notes: string[] = [];
    const run = (): Promise<unknown> =>
      runProgram('echo ran > ran; echo $$', { home, env: { PATH: '/usr/bin:/bin' }, messagePath, onOutput: () => {} });
    try {
      // the supervisor cannot be told (its channel closed): the shell reads end-of-file at its gate and leaves
      watchPrograms({
        started: (pgid) => {
          notes.push(`started ${pgid}`);
          return Promise.reject(new Error('channel closed'));
        },
        ended: (pgid) => notes.push(`ended ${pgid}`),
      });
      const refused = (await run()) as { kind: string; text: string };
      assert.equal(refused.kind, 'spawn-error');
      assert.match(refused.text, /could not be reported to quail's supervisor \(channel closed\)\. \(#4\.3\.0\)$/);
      assert.ok(!existsSync(join(home, 'ran')), 'the command did not run');
      assert.match(notes.join('|'), /^started (\d+)\|ended \1$/);

      // told: the command runs, in the group that was reported, which is reported ended after it
      notes.length = 0;
      let said = '';
      watchPrograms({
        started: (pgid) => (notes.push(`started ${pgid}`), Promise.resolve()),
        ended: (pgid) => notes.push(`ended ${pgid}`),
      });
      const r = await runProgram('echo $$', {
        home,
        env: { PATH: '/usr/bin:/bin' },
        messagePath,
        onOutput: (c) => (said += c.data.toString()),
      });
      assert.deepEqual(r, { kind: 'exit', code: 0 });
      assert.deepEqual(notes, [`started ${said.trim()}`, `ended ${said.trim()}`]);
    } finally {
      watchPrograms(undefined);
    }
  }));
