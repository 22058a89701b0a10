// The newu and getpw kinds against the pinned qmail oracle corpus (test/conformance/corpus): every scenario must PASS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCorpus } from '../runner.js';
import { pinnedCorpus } from '../world.js';

const corpus = pinnedCorpus();

for (const [kind, count] of [
  ['newu', 14],
  ['getpw', 1],
] as const) {
  void test(`oracle corpus: all ${kind} scenarios pass`, async () => {
    const lines: string[] = [];
    const summary = await runCorpus({ corpus, kind, out: (l) => lines.push(l) });
    assert.deepEqual(
      lines.filter((l) => !l.startsWith('PASS ')),
      [`${summary.passed} passed, 0 failed, 0 skipped`],
      lines.join('\n'),
    );
    assert.ok(summary.passed >= count);
  });
}
