// Every listener kind at once through start, SIGHUP, the death of each child (both SMTP processes) and stop, each port
// probed without pause: no connection is ever held without an answer, none is refused while quail runs, and mail still
// flows at the end.
// A listener kind without a probe (test/support/probe.ts) fails here, so a new service is tried the same way.
// tier: system (needs quail start, swaks)
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasProbe, probeLoop, type ProbeLoop } from '../../test/support/probe.js';
import { freePort, MAIN, setupRoot, swaks } from '../../test/support/start.js';
import { waitFor } from '../../test/support/wait.js';
import { listenerKinds, serviceKinds } from './services.js';

const asRoot = process.getuid?.() === 0;

interface State {
  readonly listeners: ReadonlyArray<{ port: number; kind: string }>;
  readonly [service: string]: unknown;
}

/** The children quail.json names (smtpd, pop3d, metricsd, send, …) and their pids (all of them: smtpd has two). */
function children(root: string): Map<string, number[]> {
  const st = JSON.parse(readFileSync(join(root, 'run', 'quail.json'), 'utf8')) as State;
  const out = new Map<string, number[]>();
  for (const [name, v] of Object.entries(st)) {
    if (name === 'pid' || typeof v !== 'object' || v === null || !('pid' in v)) continue;
    const pids = 'pids' in v && Array.isArray(v.pids) ? (v.pids as unknown[]) : [v.pid];
    out.set(
      name,
      pids.filter((p): p is number => typeof p === 'number' && p > 0),
    );
  }
  return out;
}

void test('every listener kind answers through start, two reloads, each child killed, and stop; mail flows after', async () => {
  const root = mkdtempSync(join(tmpdir(), 'quail-all-'));
  const procs: ChildProcess[] = [];
  const loops: ProbeLoop[] = [];
  let log = '';
  try {
    setupRoot(root, 'mx.all.test', [{ domain: 'all.test', boxes: ['box'] }]);
    // one listener of every kind the services table has: a kind added later is probed here without editing this test
    const kinds = listenerKinds();
    const missing = kinds.filter((k) => !hasProbe(k));
    assert.deepEqual(missing, [], 'every listener kind has a probe in test/support/probe.ts');
    const ports = new Map<string, number>();
    for (const k of kinds) ports.set(k, await freePort());
    writeFileSync(
      join(root, 'control', 'listeners'),
      kinds.map((k) => `127.0.0.1:${String(ports.get(k))} ${k}\n`).join(''),
    );
    // two SMTP processes: both accept on the ports and root counts their connections, through every transition
    writeFileSync(join(root, 'control', 'smtpdprocesses'), '2\n');

    const bad: string[] = [];
    const byKind = new Map<string, ProbeLoop>();
    for (const [k, port] of ports) {
      const l = probeLoop(k, port, bad);
      loops.push(l);
      byKind.set(k, l);
    }
    const mustAnswer = (on: boolean): void => loops.forEach((l) => l.mustAnswer(on));

    const proc = spawn(process.execPath, [MAIN, 'start', '--root', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    proc.stdout.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    await waitFor(
      () => log.includes('quail.started'),
      60_000,
      () => `quail.started\n${log}`,
    );
    mustAnswer(true);

    for (const n of [2, 3]) {
      proc.kill('SIGHUP');
      await waitFor(
        () => log.split('quail.reloaded').length === n,
        30_000,
        () => `reload ${n - 1}\n${log}`,
      );
    }

    if (asRoot) {
      const before = children(root);
      assert.equal(before.get('smtpd')?.length, 2, `two SMTP processes: ${JSON.stringify([...before])}`);
      // each child in turn, the next only once the last one's successor is recorded
      for (const [name, pids] of before)
        for (const pid of pids) {
          // The only refusal allowed, and only on the killed process's own listeners while it is replaced: a connection
          // it held alone. The SMTP processes accept on the ports themselves (privchild.ts directAccept), so one they had
          // accepted and not yet greeted is closed by the kernel at once (adopt.test.ts). A handed-over connection is
          // root's too until the child says `adopted`, right before its first byte (child-common.ts): a SIGKILL between
          // those two writes (microseconds, unless the child is descheduled there, as on a loaded CI machine) closes it
          // unanswered; src/start/README.md says why the other order would be worse. Held without an answer, or refused
          // on another service's listener, is still a failure.
          const own = serviceKinds(name).flatMap((k) => byKind.get(k) ?? []);
          for (const l of own) l.mustAnswer(false);
          process.kill(pid, 'SIGKILL');
          await waitFor(
            () => {
              const now = children(root).get(name) ?? [];
              return now.length === pids.length && !now.includes(pid);
            },
            30_000,
            () => `${name} (pid ${pid}) replaced\n${log}`,
          );
          for (const l of own) l.mustAnswer(true);
        }
    }

    const smtpPort = ports.get('smtp') ?? 0;
    const sent = swaks(smtpPort, ['--to', 'box@all.test', '--header', 'Subject: after-transitions']);
    assert.equal(sent.status, 0, sent.out);
    const newDir = join(root, 'domains', 'all.test', 'box', 'Maildir', 'new');
    await waitFor(
      () =>
        existsSync(newDir) &&
        readdirSync(newDir).some((f) => readFileSync(join(newDir, f), 'latin1').includes('after-transitions')),
      60_000,
      () => `delivered after every child was replaced\n${log}`,
    );

    mustAnswer(false);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    const counts = await Promise.all(loops.map((l) => l.stop()));
    loops.length = 0;
    for (const [i, k] of kinds.entries()) assert.ok((counts[i] ?? 0) > 10, `the ${k} loop ran (${counts[i]})`);
    assert.deepEqual(bad, [], 'no connection held without an answer, none refused while running');
    assert.doesNotMatch(log, /Unhandled|TypeError|ReferenceError|RangeError/);
    // as root every child was killed once: status counted them (and quail stopped cleanly after)
    if (asRoot) assert.match(log, /crashed/);
  } finally {
    await Promise.all(loops.map((l) => l.stop()));
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
