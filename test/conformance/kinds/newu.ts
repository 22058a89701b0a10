// kind `newu` (FORMAT.md 5): write users/assign, run `quail newu`, compare exit/stdout/stderr and the cdb bytes.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { normaliseNewuStderr } from '../normalise.js';
import type { KindHandler, ScenarioResult } from '../types.js';
import { cdbRecords, decodeBytes, setupWorld, shortDiff, quailCli } from '../world.js';

export const newuKind: KindHandler = (scenario, ctx) => {
  const { ph } = setupWorld(ctx.workDir, scenario);
  const assign = decodeBytes(scenario.input['users_assign']);
  writeFileSync(join(ph.qmail, 'users', 'assign'), assign);
  const env = { ...process.env };
  delete env['QUAIL_ROOT'];
  const r = spawnSync(process.execPath, [quailCli(), 'newu', '--root', ph.qmail], { env, encoding: 'latin1' });
  const cdbPath = join(ph.qmail, 'users', 'cdb');
  const cdb = existsSync(cdbPath) ? readFileSync(cdbPath) : null;
  const actual: Record<string, unknown> = {
    exit: r.status,
    stdout: ph.unsubst(r.stdout),
    stderr: normaliseNewuStderr(ph.unsubst(r.stderr)),
    cdb_hex: cdb === null ? null : cdb.toString('hex'),
  };
  if (cdb !== null) {
    actual['cdb_size'] = cdb.length;
    actual['cdb_records'] = cdbRecords(cdb, ph.unsubst);
  }
  const expected = scenario.outcome;
  const diffs: string[] = [];
  for (const key of ['exit', 'stdout', 'stderr', 'cdb_hex', 'cdb_size', 'cdb_records']) {
    if (!(key in expected) && !(key in actual)) continue;
    const d = shortDiff(key, expected[key], actual[key]);
    if (d) diffs.push(d);
  }
  const result: ScenarioResult = diffs.length === 0 ? { status: 'pass' } : { status: 'fail', diff: diffs.join('; ') };
  return Promise.resolve(result);
};
