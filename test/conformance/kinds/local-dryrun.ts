// kind `local-dryrun` (FORMAT.md 7): run `quail local` as the scenario's user, compare exit, stdout and stderr.
import { spawnSync } from 'node:child_process';
import { normaliseTokens, quailCli, setupWorld, shortDiff, textBytes } from '../world.js';
import type { KindHandler, ScenarioResult } from '../types.js';

interface Invocation {
  readonly run_as: string;
  readonly args: {
    readonly user: string;
    readonly homedir: string;
    readonly local: string;
    readonly dash: string;
    readonly ext: string;
    readonly domain: string;
    readonly sender: string;
    readonly aliasempty: string;
  };
  readonly options?: readonly string[];
  readonly message?: string;
}

interface Outcome {
  readonly exit: number;
  readonly stdout: string;
  readonly stderr: string;
}

const MAIN = quailCli();

export const localDryrunKind: KindHandler = (scenario, ctx) => {
  const { ph, passwd } = setupWorld(ctx.workDir, scenario);
  const invocations = (scenario.input['invocations'] ?? []) as Invocation[];
  const expected = (scenario.outcome['results'] ?? []) as Outcome[];
  const diffs: string[] = [];
  for (const [i, inv] of invocations.entries()) {
    const account = passwd.find((p) => p.name === inv.run_as);
    if (!account) return Promise.resolve({ status: 'fail', diff: `run_as ${inv.run_as} is not in passwd` });
    const me = process.getuid?.() ?? -1;
    if (!ctx.isRoot && me !== account.uid) {
      return Promise.resolve({ status: 'skip', reason: `needs root to run as ${inv.run_as} (uid ${account.uid})` });
    }
    const a = inv.args;
    const argv = [a.user, a.homedir, a.local, a.dash, a.ext, a.domain, a.sender, a.aliasempty].map(ph.subst);
    // FORMAT.md 2: the delivery system's environment is PATH=@QMAIL@/bin:/usr/bin:/bin and nothing else.
    const path = `${ph.qmail}/bin:/usr/bin:/bin`;
    const r = spawnSync(
      process.execPath,
      [MAIN, 'local', ...(inv.options ?? ['-n']), '--root', ph.qmail, '--path', path, '--', ...argv],
      {
        input: textBytes(ph.subst(inv.message ?? '')),
        env: { PATH: path },
        cwd: '/',
        ...(ctx.isRoot ? { uid: account.uid, gid: account.gid } : {}),
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const norm = (b: Buffer | null): string => normaliseTokens(ph.unsubst((b ?? Buffer.alloc(0)).toString('latin1')));
    const actual: Outcome = { exit: r.status ?? -1, stdout: norm(r.stdout), stderr: norm(r.stderr) };
    const d = shortDiff(`results[${i}]`, expected[i], actual);
    if (d) diffs.push(d);
  }
  if (expected.length !== invocations.length)
    diffs.push(`results: expected ${expected.length}, ran ${invocations.length}`);
  const result: ScenarioResult =
    diffs.length === 0 ? { status: 'pass' } : { status: 'fail', diff: diffs.slice(0, 3).join('; ') };
  return Promise.resolve(result);
};
