// The conformance runner core: find scenarios, run each in a fresh temp dir through its kind handler, report.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errText } from '../../src/core/index.js';
import { KINDS } from './kinds/index.js';
import type { KindHandler, ScenarioResult } from './types.js';
import { loadScenario } from './world.js';

export interface RunOptions {
  /** Directory of scenario files (*.json). */
  readonly corpus: string;
  /** Only scenarios of this kind. */
  readonly kind?: string;
  /** Only the scenario with this id (or id prefix). */
  readonly only?: string;
  /** Where each result line goes. */
  readonly out: (line: string) => void;
  /** Handlers by kind (default: KINDS). */
  readonly kinds?: Readonly<Record<string, KindHandler | undefined>>;
}

export interface RunSummary {
  passed: number;
  failed: number;
  skipped: number;
}

/** One line of text, whatever a handler put in its diff/reason. */
const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').slice(0, 2000);

/** Runs one scenario file; never throws (a crash is a FAIL). */
export async function runScenarioFile(
  path: string,
  kinds: Readonly<Record<string, KindHandler | undefined>> = KINDS,
): Promise<{ id: string; kind: string; result: ScenarioResult }> {
  let scenario;
  try {
    scenario = loadScenario(path);
  } catch (err) {
    const id = path.replace(/^.*\//, '').replace(/\.json$/, '');
    return { id, kind: '?', result: { status: 'fail', diff: `cannot load: ${errText(err)}` } };
  }
  const handler = kinds[scenario.kind];
  if (!handler)
    return {
      id: scenario.id,
      kind: scenario.kind,
      result: { status: 'skip', reason: `no handler for kind ${scenario.kind} yet` },
    };
  const workDir = mkdtempSync(join(tmpdir(), 'quail-conf-'));
  try {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const result = await handler(scenario, { workDir, isRoot });
    return { id: scenario.id, kind: scenario.kind, result };
  } catch (err) {
    const msg = errText(err);
    return { id: scenario.id, kind: scenario.kind, result: { status: 'fail', diff: `handler error: ${msg}` } };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Runs every matching scenario of the corpus in file-name order, one output line each, then the summary. */
export async function runCorpus(opts: RunOptions): Promise<RunSummary> {
  const files = readdirSync(opts.corpus)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const summary: RunSummary = { passed: 0, failed: 0, skipped: 0 };
  for (const f of files) {
    const id = f.replace(/\.json$/, '');
    if (opts.only !== undefined && id !== opts.only && !id.startsWith(opts.only)) continue;
    const path = join(opts.corpus, f);
    if (opts.kind !== undefined) {
      let kind: string;
      try {
        kind = loadScenario(path).kind;
      } catch {
        kind = '?';
      }
      if (kind !== opts.kind) continue;
    }
    const { id: sid, result } = await runScenarioFile(path, opts.kinds ?? KINDS);
    if (result.status === 'pass') {
      summary.passed++;
      opts.out(`PASS ${sid}`);
    } else if (result.status === 'fail') {
      summary.failed++;
      opts.out(`FAIL ${sid}: ${oneLine(result.diff)}`);
    } else {
      summary.skipped++;
      opts.out(`SKIP ${sid}: ${oneLine(result.reason)}`);
    }
  }
  opts.out(`${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
  return summary;
}
