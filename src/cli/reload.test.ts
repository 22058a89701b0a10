// A running quail learns about a domain added after it started: the directory commands SIGHUP it (issue 5).
// tier: system (needs swaks)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAIN, startProcess, waitFor, type QuailProcess } from '../../test/support/start.js';
import { reloadIfChanged, routingStamp } from './reload.js';

function run(args: readonly string[]): { out: string; err: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `quail ${args.join(' ')}: exit ${String(r.status)}\n${r.stdout}${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

void test('routingStamp changes when virtualdomains is replaced; nothing is signalled when no quail runs', () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-reload-'));
  try {
    mkdirSync(join(root, 'control'));
    const before = routingStamp(root);
    assert.equal(reloadIfChanged(root, before, 't'), undefined);
    writeFileSync(join(root, 'control', 'virtualdomains'), 'a.test:a.test\n');
    assert.notEqual(routingStamp(root), before);
    assert.equal(reloadIfChanged(root, before, 't'), undefined, 'no pid file: nobody to tell');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

void test('domain add while quail runs: the server reloads and delivers to the new domain without a restart', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-reload-'));
  chmodSync(root, 0o755);
  let q: QuailProcess | undefined;
  try {
    run(['init', '--root', root, '--me', 'mx.test']);
    run(['domain', 'add', 'first.test', '--root', root]);
    q = await startProcess(root);
    const log = q.log;

    const added = run(['domain', 'add', 'late.test', '--root', root]);
    assert.match(added.err, /told the running quail \(pid \d+\) to reload control\/virtualdomains/);
    await waitFor(() => log().includes('quail.reloaded'), 30_000, log);
    const user = run(['user', 'add', 'ann@late.test', '--password', 'pw', '--root', root]);
    assert.equal(user.err, '', 'a mailbox does not change routing: no reload');

    const state = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as {
      listeners: Array<{ port: number; kind: string }>;
    };
    const port = state.listeners.find((l) => l.kind === 'smtp')?.port;
    assert.ok(port !== undefined);
    const s = spawnSync(
      'swaks',
      [
        '--server',
        `127.0.0.1:${port}`,
        '--from',
        'bob@sender.test',
        '--to',
        'ann@late.test',
        '--h-Subject',
        'after-reload',
        '--helo',
        'client.test',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(s.status, 0, s.stdout + s.stderr);
    const box = join(root, 'domains', 'late.test', 'ann', 'Maildir', 'new');
    await waitFor(
      () => readdirSync(box).length > 0,
      30_000,
      () => `nothing in ${box}\n${log()}`,
    );
    assert.match(
      readFileSync(join(box, readdirSync(box)[0] ?? ''), 'utf8'),
      /Delivered-To: late\.test-ann@late\.test\n[\s\S]*Subject: after-reload/,
    );
    q.child.kill('SIGTERM');
    assert.equal((await q.exited).code, 0, log());
  } finally {
    q?.killGroup();
    rmSync(root, { recursive: true, force: true });
  }
});
