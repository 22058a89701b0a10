// The side-by-side benchmark's harness works: with a tiny n after a tiny warm-up, quail start and (as root) a private Postfix each deliver every message into the Maildirs, and nothing is left running.
// tier: system (needs postfix: smtp-source)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treeCpuMs } from './cpu.js';
import { postfixUnavailable } from './postfix.js';
import type { BenchContext, BenchRow } from './types.js';
import { versusSection } from './versus.js';

const N = 20;
const withPostfix = postfixUnavailable() === undefined;

void test('treeCpuMs: a process tree counts its own CPU; a pid that does not exist counts nothing', () => {
  // this test process has used some CPU to get here (module loading at least), and never less later on
  const a = treeCpuMs(process.pid);
  assert.ok(a > 0, String(a));
  assert.ok(treeCpuMs(process.pid) >= a);
  assert.equal(treeCpuMs(0x7ffffffe), 0);
});

void test('treeCpuMs: finer than a clock tick, so a few ms of CPU never reads as none', () => {
  // /proc/PID/stat counts whole 10 ms ticks: 3 ms of work would read as 0 or 10. schedstat's nanoseconds do not.
  const a = treeCpuMs(process.pid);
  const start = process.cpuUsage();
  let x = 0;
  while (process.cpuUsage(start).user < 3000) x += Math.sqrt(x + 1);
  const d = treeCpuMs(process.pid) - a;
  assert.ok(d >= 2.5, `${d} ms (${x > 0 ? 'spun' : ''})`);
  assert.ok(!Number.isInteger(d / 10), `${d} ms is whole ticks`);
});

/**
 * Runs the section in a fresh directory with `env` set for the run (QUAIL_BENCH_WARMUP=7 unless given: a small
 * warm-up, so its messages are sent and delivered first, and counted neither as accepted nor as delivered), hands
 * `check` the rows and the directory before it is removed, and puts the environment back.
 */
async function runVersus(
  env: Readonly<Record<string, string>>,
  check: (byName: Map<string, BenchRow>, rows: readonly BenchRow[], dir: string) => void,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-bench-versus-'));
  chmodSync(dir, 0o711);
  const ctx: BenchContext = { workDir: dir, n: () => N, caseBudgetMs: 60_000, fsyncRate: 0, progress: () => undefined };
  const vars = { QUAIL_BENCH_WARMUP: '7', ...env };
  const before = Object.keys(vars).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, vars);
  try {
    const rows = await versusSection.run(ctx);
    check(new Map(rows.map((r) => [r.name, r])), rows, dir);
  } finally {
    for (const [k, v] of before) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The latency phase's probe got every one of its messages answered and into the Maildir, and timed them. */
function probed(byName: Map<string, BenchRow>, who: string, clients: number, rows: readonly BenchRow[]): void {
  for (const [what, did] of [
    ['250', 'answered 250'],
    ['Maildir', 'in the Maildir'],
  ] as const) {
    const r = byName.get(`${who}, p99 latency to the ${what}, ${clients} clients`);
    const m = /^p50 ([\d.]+) ms; (\d+) of (\d+) probe messages (.*)$/.exec(r?.note ?? '');
    assert.ok(m, JSON.stringify(rows));
    assert.equal(m[2], m[3], `${who} ${what}: ${r?.note ?? ''}`);
    assert.ok(Number(m[3]) >= 1 && m[4]?.startsWith(did), r?.note);
    assert.ok((r?.value ?? 0) > 0 && (r?.value ?? 0) >= Number(m[1]), JSON.stringify(r));
  }
}

void test(`versus section: every case delivers all N messages, and acceptance alone delivers none until let go${withPostfix ? '' : ' (Postfix skipped: not root or not installed)'}`, async () => {
  await runVersus({}, (byName, rows, dir) => {
    for (const c of [10, 50]) {
      const q = byName.get(`quail, delivered, ${c} clients`);
      assert.match(q?.note ?? '', new RegExp(`^${N} delivered of ${N} accepted`), JSON.stringify(rows));
      assert.ok((byName.get(`quail, server CPU per message, ${c} clients`)?.value ?? 0) > 0);
      for (const who of withPostfix ? ['quail', 'Postfix'] : ['quail']) {
        probed(byName, who, c, rows);
        // relayed: SMTP in → the sink, every message counted there
        const r = byName.get(`${who}, relayed, ${c} clients`);
        assert.match(r?.note ?? '', new RegExp(`^SMTP in → .*; ${N} delivered of ${N} accepted`), JSON.stringify(rows));
        assert.ok((byName.get(`${who}, relay CPU per message, ${c} clients`)?.value ?? 0) > 0);
      }
      if (withPostfix) {
        const p = byName.get(`Postfix, delivered, ${c} clients`);
        assert.match(p?.note ?? '', new RegExp(`^${N} delivered of ${N} accepted`), JSON.stringify(rows));
        assert.ok((byName.get(`ratio quail / Postfix, delivered, ${c} clients`)?.value ?? 0) > 0);
      } else assert.match(byName.get(`Postfix, ${c} clients`)?.note ?? '', /^skipped: /);
      // acceptance alone: all N taken in while the delivery side was stopped, none delivered until it was let go
      for (const who of withPostfix ? ['quail', 'Postfix'] : ['quail']) {
        const a = byName.get(`${who}, accepted alone, ${c} clients`);
        assert.match(
          a?.note ?? '',
          new RegExp(
            `^${N} accepted in [\\d.]+ s with delivery held \\(.*\\), 0 delivered meanwhile; .*; ${N} delivered in`,
          ),
          JSON.stringify(rows),
        );
        assert.ok((a?.value ?? 0) > 0);
        assert.ok(
          (byName.get(`${who}, server CPU per accepted message, delivery stopped, ${c} clients`)?.value ?? 0) > 0,
        );
      }
      if (withPostfix) assert.ok((byName.get(`ratio quail / Postfix, accepted alone, ${c} clients`)?.value ?? 0) > 0);
    }
    // Every quail start has stopped (its pid file is gone); no Postfix master is left running.
    for (const name of readdirSync(dir).filter((d) => d.startsWith('quail-')))
      assert.equal(existsSync(join(dir, name, 'run', 'quail.pid')), false, `${name}: quail start still running`);
    for (const name of readdirSync(dir).filter((d) => d.startsWith('postfix-'))) {
      const pidFile = join(dir, name, 'spool', 'pid', 'master.pid');
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      assert.throws(() => process.kill(pid, 0), `Postfix master ${pid} of ${name} is still running`);
    }
  });
});

void test('versus section, QUAIL_BENCH_VIA=directory: quail delivers all N through the directory (vdeliver), beside QUAIL_BENCH_MAILBOXES more', async () => {
  await runVersus(
    { QUAIL_BENCH_VIA: 'directory', QUAIL_BENCH_MAILBOXES: '600', QUAIL_BENCH_CASES: 'local' },
    (byName, rows, dir) => {
      for (const c of [10, 50]) {
        const q = byName.get(`quail, delivered, ${c} clients`);
        assert.match(
          q?.note ?? '',
          new RegExp(`^${N} delivered of ${N} accepted.*via directory`),
          JSON.stringify(rows),
        );
        probed(byName, 'quail', c, rows);
        // the root was made the directory's way: its mailboxes are in SQLite and the domain hands mail to vdeliver
        const root = join(dir, `quail-${c}`);
        assert.ok(existsSync(join(root, 'directory.sqlite')), `${root}: no directory`);
        assert.match(readFileSync(join(root, 'domains', 'd00.bench.test', '.qmail-default'), 'utf8'), /quail vdeliver/);
        assert.equal(existsSync(join(root, 'domains', 'd00.bench.test', '.qmail-u0')), false);
        // 600 more mailboxes in 60 more domains: rows in the directory, and every domain in qmail's files
        const db = new Database(join(root, 'directory.sqlite'), { readonly: true });
        const count = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
        assert.equal(count('SELECT count(*) AS n FROM mailboxes'), 600 + 11);
        assert.equal(count('SELECT count(*) AS n FROM domains'), 60 + 11);
        db.close();
        const lines = (p: string): string[] => readFileSync(join(root, p), 'latin1').split('\n').filter(Boolean);
        const hosts = [...lines('control/rcpthosts'), ...lines('control/morercpthosts')];
        assert.equal(lines('control/rcpthosts').length, 50);
        for (const d of ['d00.bench.test', 'd0000000.bench.test', 'd0000059.bench.test'])
          assert.ok(hosts.includes(d), d);
        assert.equal(lines('control/virtualdomains').length, 71);
        assert.ok(existsSync(join(root, 'control', 'morercpthosts.cdb')));
      }
    },
  );
});
