// kind `delivery` (FORMAT.md 3 and 9): the whole of quail (queue, scheduler, local, remote) on one scenario.
import { normaliseNewuStderr } from '../normalise.js';
import type { KindHandler, ScenarioResult } from '../types.js';
import { cdbRecords, normaliseTokens } from '../world.js';
import { collectMessages } from '../delivery/collect.js';
import { compareFiles, compareMessages, compareRemote } from '../delivery/compare.js';
import { diffFiles } from '../delivery/files.js';
import { runDelivery } from '../delivery/run.js';

export const deliveryKind: KindHandler = async (scenario, ctx) => {
  if (!ctx.isRoot)
    return { status: 'skip', reason: 'delivery scenarios need root (deliveries run as the scenario uids)' };
  const run = await runDelivery(scenario, ctx.workDir);
  const norm = (text: string): string => normaliseTokens(run.ph.unsubst(text));
  const exp = scenario.outcome as Record<string, unknown>;
  const out: string[] = [];

  const expStarted = exp['qmail_send_started'] !== false;
  if (expStarted !== run.started)
    out.push(`qmail_send_started: expected ${String(expStarted)} got ${String(run.started)}`);

  const expNewu = exp['qmail_newu'] as Record<string, unknown> | undefined;
  if (expNewu !== undefined) {
    if (run.newu === undefined) out.push('qmail_newu: newu was not run');
    else {
      if (expNewu['exit'] !== run.newu.exit)
        out.push(`qmail_newu.exit: expected ${String(expNewu['exit'])} got ${String(run.newu.exit)}`);
      if ((expNewu['stdout'] ?? '') !== run.ph.unsubst(run.newu.stdout))
        out.push(`qmail_newu.stdout: ${JSON.stringify(run.newu.stdout)}`);
      const stderr = normaliseNewuStderr(run.ph.unsubst(run.newu.stderr));
      if ((expNewu['stderr'] ?? '') !== stderr)
        out.push(`qmail_newu.stderr: expected ${JSON.stringify(expNewu['stderr'])} got ${JSON.stringify(stderr)}`);
      // FORMAT.md 1.1: cdb_hex holds the oracle's own @ROOT@, so the placeholder-normalised records are compared.
      const want = ((expNewu['cdb_records'] ?? []) as Array<{ key: string; data: string }>).map(
        (r) => `${r.key} -> ${r.data}`,
      );
      const got =
        run.newu.cdb === null ? [] : cdbRecords(run.newu.cdb, run.ph.unsubst).map((r) => `${r.key} -> ${r.data}`);
      if (JSON.stringify(want) !== JSON.stringify(got))
        out.push(`qmail_newu.cdb_records: expected ${JSON.stringify(want)} got ${JSON.stringify(got)}`);
    }
  }

  compareMessages(
    (exp['messages'] ?? []) as Parameters<typeof compareMessages>[0],
    collectMessages(run.injected, run.events, norm),
    out,
  );
  const { files, removed } = diffFiles(run.before, run.after, run.ph, run.passwd, norm);
  compareFiles((exp['files'] ?? []) as Parameters<typeof compareFiles>[0], files, out);
  const expRemoved = ((exp['removed_paths'] ?? []) as string[]).slice().sort();
  if (JSON.stringify(expRemoved) !== JSON.stringify(removed.sort()))
    out.push(`removed_paths: expected ${JSON.stringify(expRemoved)} got ${JSON.stringify(removed)}`);
  const remote = run.remote.map((r) => ({ ...r, mail_from: run.ph.unsubst(r.mail_from), data: norm(r.data) }));
  compareRemote((exp['remote'] ?? []) as Parameters<typeof compareRemote>[0], remote, out);

  const result: ScenarioResult = out.length === 0 ? { status: 'pass' } : { status: 'fail', diff: out.join('; ') };
  return result;
};
