// The ONE place where quail's output is normalised towards qmail's where quail deliberately says more.
//
// Every rule here names the difference and why it is deliberate. Nothing else in the runner may paper over
// a difference; anything not listed must match the oracle exactly.

/**
 * quail newu on a malformed users/assign.
 *   qmail-newu: `qmail-newu: fatal: bad format in users/assign\n` (exit 111)
 *   quail:      `quail newu: fatal: bad format in users/assign line N: <what>; the old users/cdb is kept\n` (exit 111)
 * Why: the administrator is told which line is wrong and what is wrong with it, and that nothing was changed.
 * Only the prefix and the added detail are mapped; exit code, stdout and the cdb bytes are compared as they are.
 */
export function normaliseNewuStderr(stderr: string): string {
  return stderr.replace(
    /^quail newu: fatal: bad format in users\/assign line \d+: [^\n]*; the old users\/cdb is kept$/gm,
    'qmail-newu: fatal: bad format in users/assign',
  );
}
