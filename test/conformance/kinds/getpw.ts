// kind `getpw` (FORMAT.md 6): build `fs`, then for each local part compare qmail-getpw's choice with ours.
import { escapeBytes, setupWorld, shortDiff } from '../world.js';
import { lookupAssignment, tablePasswd } from '../../../src/users/index.js';
import type { KindHandler, ScenarioResult } from '../types.js';

interface GetpwResult {
  readonly local: string;
  readonly exit: number;
  readonly user?: string;
  readonly uid?: number;
  readonly gid?: number;
  readonly home?: string;
  readonly dash?: string;
  readonly ext?: string;
  readonly stdout_raw?: string;
}

export const getpwKind: KindHandler = (scenario, ctx) => {
  const { ph, passwd } = setupWorld(ctx.workDir, scenario);
  const source = tablePasswd(passwd);
  const locals = (scenario.input['locals'] ?? []) as string[];
  const expected = (scenario.outcome['results'] ?? []) as GetpwResult[];
  const diffs: string[] = [];
  locals.forEach((local, i) => {
    let actual: GetpwResult;
    try {
      // No users/cdb exists in this world, so this is exactly qmail-getpw: passwd fallback, then alias.
      const a = lookupAssignment({ root: ph.qmail, local, passwd: source });
      const raw = [a.user, String(a.uid), String(a.gid), a.home, a.dash, a.ext].map((f) => `${f}\0`).join('');
      actual = {
        local,
        exit: 0,
        user: a.user,
        uid: a.uid,
        gid: a.gid,
        home: ph.unsubst(a.home),
        dash: a.dash,
        ext: a.ext,
        stdout_raw: ph.unsubst(escapeBytes(Buffer.from(raw, 'latin1'))),
      };
    } catch (err) {
      actual = { local, exit: 111, stdout_raw: '', ...(err instanceof Error ? { error: err.message } : {}) };
    }
    const want = expected[i];
    const d = shortDiff(
      `results[${i}] (${JSON.stringify(local)})`,
      want,
      want === undefined ? actual : pickKeys(actual, want),
    );
    if (d) diffs.push(d);
  });
  if (expected.length !== locals.length)
    diffs.push(`results: expected ${expected.length} entries, have ${locals.length} locals`);
  const result: ScenarioResult =
    diffs.length === 0 ? { status: 'pass' } : { status: 'fail', diff: diffs.slice(0, 3).join('; ') };
  return Promise.resolve(result);
};

/** Our result restricted to the keys the oracle recorded, in the oracle's key order. */
function pickKeys(actual: GetpwResult, want: GetpwResult): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const a = actual as unknown as Record<string, unknown>;
  for (const k of Object.keys(want)) out[k] = a[k];
  return out;
}
