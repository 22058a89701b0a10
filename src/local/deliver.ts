// deliverLocal: one LocalJob run in this process (which must already have the job's uid), mapped to a LocalResult.
import { UniqueNamer } from '../maildir/index.js';
import { defaultPath } from './env.js';
import type { LocalArgs } from './env.js';
import { runQmailLocal } from './run.js';
import type { LocalRun } from './run.js';
import type { ForwardRequest, LocalJob, LocalResult } from './types.js';
import type { ProgramHook } from './hook.js';

export interface DeliverOptions {
  /** PATH given to programs; default `<root>/bin:/usr/local/bin:/usr/bin:/bin`. */
  readonly path?: string;
  /** Maildir name source; one per process (default: a new one per call, which is still unique by pid+time+O_EXCL). */
  readonly namer?: UniqueNamer;
  /** The time used in UFLINE (default: now). */
  readonly now?: Date;
  /** In-process program lines (`| quail vdeliver`): see hook.ts. */
  readonly programHook?: ProgramHook;
}

/** qmail-lspawn keeps about this many bytes of qmail-local's output (D.8.2). */
const REPORT_LIMIT = 3000;

export const ROOT_REFUSED = 'Not allowed to perform deliveries as root.';

export function wrongUidText(have: number, want: number): string {
  return `quail runs as uid ${have} and cannot deliver as uid ${want}; run quail as root or assign this mailbox to uid ${have} (#4.3.0)`;
}

export const jobArgs = (job: LocalJob): LocalArgs => ({
  user: job.user,
  home: job.home,
  local: job.local,
  dash: job.dash,
  ext: job.ext,
  domain: job.domain,
  sender: job.sender,
  defaultDelivery: job.defaultDelivery,
});

export const jobInjector = (job: LocalJob): ForwardRequest['injector'] =>
  job.user === 'alias' ? { kind: 'alias' } : { kind: 'uid', uid: job.uid };

/** What qmail-lspawn (spawn.c) puts in place of the end of an output longer than REPORT_LIMIT. */
const TOO_LONG = Buffer.from('\nError report too long, sorry.\n');

/**
 * D.8.2: the report qmail-lspawn keeps of a run's output. Longer than REPORT_LIMIT bytes: the first
 * REPORT_LIMIT - 34 bytes and TOO_LONG (spawn.c); then up to the first NUL (qmail-send reads it as a C string).
 */
export function reportText(output: readonly { readonly data: Buffer }[]): string {
  let all = Buffer.concat(output.map((c) => c.data));
  if (all.length > REPORT_LIMIT) all = Buffer.concat([all.subarray(0, REPORT_LIMIT - TOO_LONG.length - 3), TOO_LONG]);
  const nul = all.indexOf(0);
  if (nul >= 0) all = all.subarray(0, nul);
  return all.toString('latin1');
}

/** D.8.2: qmail-lspawn's reading of qmail-local's exit code and output. */
export function resultOf(run: LocalRun): LocalResult {
  const report = reportText(run.output);
  if (run.exitCode === 0) return { result: 'success', report, ...(run.forward ? { forward: run.forward } : {}) };
  if ([111, 71, 74, 75].includes(run.exitCode)) return { result: 'deferral', report };
  return { result: 'failure', report };
}

/** A failure decided before qmail-local would even run. */
export const deferral = (report: string): LocalResult => ({ result: 'deferral', report: `${report}\n` });

/**
 * Runs the whole of docs/QMAIL.md D for `job` in this process. Refuses uid 0 and any uid that is not this
 * process's own (use LocalDeliverer to deliver as other users when running as root).
 */
export async function deliverLocal(job: LocalJob, opts: DeliverOptions = {}): Promise<LocalResult> {
  if (job.uid === 0) return deferral(ROOT_REFUSED);
  const me = process.getuid?.() ?? -1;
  if (me !== job.uid) return deferral(wrongUidText(me, job.uid));
  const run = await runQmailLocal(jobArgs(job), {
    doit: true,
    messagePath: job.messagePath,
    path: opts.path ?? defaultPath(job.root),
    namer: opts.namer ?? new UniqueNamer(),
    injector: jobInjector(job),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.programHook ? { programHook: opts.programHook } : {}),
  });
  return resultOf(run);
}
