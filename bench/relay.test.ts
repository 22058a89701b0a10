// The relay benchmark's harness works: with a tiny n, quail from its queue, quail's client alone and (as root) a private Postfix all deliver every message to the sink.
// tier: system (needs postfix)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postfixUnavailable } from './postfix.js';
import { relayRows, runRelay } from './relay.js';
import type { BenchContext } from './types.js';

const N = 20;

function context(dir: string): BenchContext {
  return { workDir: dir, n: () => N, caseBudgetMs: 60_000, fsyncRate: 0, progress: () => undefined };
}

const withPostfix = postfixUnavailable() === undefined;

void test(`relay section: every case reports N delivered to the sink${withPostfix ? '' : ' (Postfix skipped: not root or not installed)'}`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-bench-relay-'));
  chmodSync(dir, 0o711);
  try {
    const r = await runRelay(context(dir));
    assert.equal(r.postfixSkipped === undefined, withPostfix);
    const perC = (c: number): Array<[string, number, number, number]> => [
      ['quail', c, N, 0],
      ['quail-client', c, N, 0],
      ...(withPostfix ? [['postfix', c, N, 0] as [string, number, number, number]] : []),
    ];
    assert.deepEqual(
      r.cases.map((c) => [c.mta, c.concurrency, c.atSink, c.early]),
      [...perC(10), ...perC(50)],
      JSON.stringify(r.cases),
    );
    // quail's queue case went through quail start's scheduler: N successful deliveries logged, none deferred.
    for (const c of r.cases.filter((x) => x.mta === 'quail')) {
      assert.match(c.detail, new RegExp(`deliveries logged: ${N} success, 0 deferral, 0 failure`), c.detail);
      assert.doesNotMatch(c.detail, /still queued/, c.detail);
    }
    // Every quail start has stopped (its pid file is gone) and its queue is empty.
    for (const name of readdirSync(dir).filter((d) => d.startsWith('quail-queue-'))) {
      assert.equal(existsSync(join(dir, name, 'run', 'quail.pid')), false, `${name}: quail start still running`);
      assert.deepEqual(readdirSync(join(dir, name, 'queue', 'env')), [], `${name}: queue not empty`);
    }
    // The table: per concurrency quail and Postfix from the queue, their ratio, then the client alone.
    const rows = relayRows(r);
    const names = (c: number): string[] => [
      `quail start, queue → SINK, concurrency ${c}`,
      ...(withPostfix
        ? [`Postfix V, queue → SINK, concurrency ${c}`, `ratio quail / Postfix, queue → sink, concurrency ${c}`]
        : []),
      `quail SMTP client alone, no queue → SINK, concurrency ${c}`,
    ];
    assert.deepEqual(
      rows.map((x) =>
        x.name.replace(/Postfix [0-9.]+/, 'Postfix V').replace(/queue → (?!sink).*?, /, 'queue → SINK, '),
      ),
      [...names(10), ...names(50), ...(withPostfix ? [] : ['Postfix comparison skipped'])],
    );
    for (const x of rows.filter((y) => y.unit === 'msg/s'))
      assert.match(x.note ?? '', new RegExp(`^${N} of ${N} at the sink`), x.name);
    // Nothing of the Postfix instances is left running: each instance's master.pid names a process that is gone.
    for (const name of readdirSync(dir).filter((d) => d.startsWith('postfix-'))) {
      const pidFile = join(dir, name, 'spool', 'pid', 'master.pid');
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      assert.throws(() => process.kill(pid, 0), `Postfix master ${pid} of ${name} is still running`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
