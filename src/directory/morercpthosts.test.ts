// End to end: a domain that lives only in morercpthosts(.cdb) is accepted at RCPT by `quail start` and delivered.
// tier: system (needs cdb, quail start, swaks)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../test/support/wait.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

function quail(args: readonly string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** swaks' exit status and transcript (24: the server refused a recipient). */
function swaks(port: number, to: string): { status: number | null; out: string } {
  const r = spawnSync(
    'swaks',
    [
      '--server',
      `127.0.0.1:${port}`,
      '--from',
      'ann@sender.test',
      '--to',
      to,
      '--h-Subject',
      `to ${to}`,
      '--helo',
      'client.test',
    ],
    { encoding: 'utf8' },
  );
  return { status: r.status, out: r.stdout + r.stderr };
}

void test('morercpthosts only: quail start accepts RCPT to the domain, refuses others, delivers into the mailbox', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-mrh-e2e-'));
  chmodSync(root, 0o755); // the delivery account must reach domains/
  const child = { pid: undefined as number | undefined };
  try {
    quail(['init', '--root', root, '--me', 'mx.test']);
    writeFileSync(join(root, 'control', 'rcpthostsmax'), '1\n'); // rcpthosts is full with `mx.test`
    quail(['domain', 'add', 'more.test', '--root', root]);
    quail(['user', 'add', 'joe@more.test', '--password', 'x', '--root', root]);
    const rcpthosts = readFileSync(join(root, 'control', 'rcpthosts'), 'latin1');
    assert.doesNotMatch(rcpthosts, /more\.test/);
    assert.equal(readFileSync(join(root, 'control', 'morercpthosts'), 'latin1'), 'more.test\n');
    assert.equal(spawnSync('cdb', ['-q', join(root, 'control', 'morercpthosts.cdb'), 'more.test']).status, 0);
    assert.equal(quail(['directory', 'check', '--root', root]), 'no drift: the files agree with the directory\n');

    const p = spawn(
      process.execPath,
      [MAIN, 'start', '--root', root, '--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    child.pid = p.pid;
    let log = '';
    p.stdout.on('data', (c: Buffer) => (log += c.toString()));
    p.stderr.on('data', (c: Buffer) => (log += c.toString()));
    await waitFor(
      () => log.includes('quail.started') || p.exitCode !== null,
      30_000,
      () => log,
    );
    assert.equal(p.exitCode, null, log);
    const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
      listeners: Array<{ port: number; kind: string }>;
    };
    const port = state.listeners.find((l) => l.kind === 'smtp')?.port ?? 0;

    const good = swaks(port, 'joe@more.test');
    assert.equal(good.status, 0, good.out);
    const other = swaks(port, 'joe@not-ours.test');
    assert.equal(other.status, 24, other.out);
    assert.match(other.out, /<\*\* 553 /);

    const newDir = join(root, 'domains', 'more.test', 'joe', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(newDir).length > 0,
      30_000,
      () => `nothing in ${newDir}\n${log}`,
    );
    const text = readFileSync(join(newDir, readdirSync(newDir)[0] ?? ''), 'utf8');
    assert.match(text, /^Return-Path: <ann@sender\.test>\nDelivered-To: more\.test-joe@more\.test\n/);
    p.kill('SIGTERM');
    await new Promise((r) => (p.exitCode !== null ? r(undefined) : p.once('exit', r)));
  } finally {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone already
    }
    rmSync(root, { recursive: true, force: true });
  }
});
