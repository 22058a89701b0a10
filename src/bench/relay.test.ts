// The relay benchmark's harness works: with a tiny n, quail and a private Postfix both deliver every message to the sink.
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

void test('relay section: quail and Postfix rows each report N delivered to the sink', { skip: postfixUnavailable() ?? false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'quail-bench-relay-'));
  chmodSync(dir, 0o711);
  try {
    const r = await runRelay(context(dir));
    assert.equal(r.postfixSkipped, undefined);
    assert.deepEqual(
      r.cases.map((c) => [c.mta, c.concurrency, c.atSink]),
      [['quail', 10, N], ['postfix', 10, N], ['quail', 50, N], ['postfix', 50, N]],
      JSON.stringify(r.cases),
    );
    // The table: a rate per MTA and a ratio per concurrency, each note naming N of N at the sink.
    const rows = relayRows(r);
    assert.deepEqual(rows.map((x) => x.name.replace(/Postfix [0-9.]+/, 'Postfix V').replace(/→ .*?, /, '→ SINK, ')), [
      'quail → SINK, concurrency 10', 'Postfix V → SINK, concurrency 10', 'ratio quail / Postfix, concurrency 10',
      'quail → SINK, concurrency 50', 'Postfix V → SINK, concurrency 50', 'ratio quail / Postfix, concurrency 50',
    ]);
    for (const x of rows.filter((y) => y.unit === 'msg/s')) assert.match(x.note ?? '', new RegExp(`^${N} of ${N} at the sink`), x.name);
    // Nothing of the instances is left running: each instance's master.pid names a process that is gone.
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
