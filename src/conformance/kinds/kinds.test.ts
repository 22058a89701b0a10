// The newu and getpw kinds against the shared qmail oracle corpus: every scenario must PASS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runCorpus } from '../runner.js';
import { packageDir } from '../world.js';

const corpus = resolve(packageDir(), '../shared/conformance/qmail/corpus');
const skip = existsSync(corpus) ? false : `oracle corpus ${corpus} is not present`;

for (const [kind, count] of [['newu', 14], ['getpw', 1]] as const) {
  void test(`oracle corpus: all ${kind} scenarios pass`, { skip }, async () => {
    const lines: string[] = [];
    const summary = await runCorpus({ corpus, kind, out: (l) => lines.push(l) });
    assert.deepEqual(lines.filter((l) => !l.startsWith('PASS ')), [`${summary.passed} passed, 0 failed, 0 skipped`], lines.join('\n'));
    assert.ok(summary.passed >= count);
  });
}
