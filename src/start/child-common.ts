// What the unprivileged SMTP, POP3 and send child processes share: dropping root, how they stop and reload, crashes.

export const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Root → the account: supplementary groups, gid, then uid (real, effective and saved). false if that failed. */
function dropPrivileges(uid: number, gid: number): boolean {
  if (process.getuid?.() !== 0) return process.getuid?.() === uid;
  process.setgroups?.([gid]);
  process.setgid?.(gid);
  process.setuid?.(uid);
  return process.getuid?.() === uid && process.geteuid?.() === uid && process.getgid?.() === gid;
}

/** Becomes uid/gid before touching anything; on failure reports `fatal`, leaves with exit 100 and returns false. */
export function becomeAccount(uid: number, gid: number, fatal: (error: string) => void): boolean {
  try {
    if (dropPrivileges(uid, gid)) return true;
    fatal(`cannot switch to uid ${uid} gid ${gid}: still uid ${process.getuid?.() ?? '?'}`);
  } catch (err) {
    fatal(`cannot switch to uid ${uid} gid ${gid}: ${errText(err)}`);
  }
  process.exitCode = 100;
  process.disconnect?.();
  return false;
}

/**
 * The parent gone (killed): nobody would restart or stop us, so finish quickly. A signal sent to the whole
 * process group (Ctrl-C, SIGTERM): the parent asks for the same, so stop with the usual grace. SIGHUP: reload.
 */
export function onLifecycleSignals(stop: (graceMs: number) => Promise<void>, reload: () => void): void {
  process.on('disconnect', () => void stop(1000));
  process.on('SIGTERM', () => void stop(10_000));
  process.on('SIGINT', () => void stop(10_000));
  process.on('SIGHUP', reload);
}

/** What a child tells its parent before it dies of an exception nobody caught. */
export interface CrashReport {
  readonly type: 'crash';
  readonly error: string;
  readonly stack: string;
}

/**
 * An exception nobody caught, or a rejection nobody handled: the parent is sent its message and stack (it logs them
 * and starts a new process), then this one leaves with exit 70 — at once if the parent is gone, else once the report
 * is out (2 s at most).
 */
export function reportCrashes(): void {
  const crashed = (err: unknown): void => {
    const e = err instanceof Error ? err : new Error(String(err));
    setTimeout(() => process.exit(70), 2000);
    if (!process.connected || process.send === undefined) process.exit(70);
    process.send({ type: 'crash', error: e.message, stack: e.stack ?? '' } satisfies CrashReport, () => process.exit(70));
  };
  process.on('uncaughtException', crashed);
  process.on('unhandledRejection', crashed);
}
