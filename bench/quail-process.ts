// The real `quail start` supervisor as a child process for the bench sections, and the quail CLI run to completion.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** src/cli/main.js (compiled beside bench/): the program `quail` runs. */
const QUAIL_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `quail ARGS...` and waits for it; throws with its stderr when it fails. */
export function quailCli(args: readonly string[]): void {
  const r = spawnSync(process.execPath, [QUAIL_MAIN, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`quail ${args[0] ?? ''} failed (exit ${String(r.status)}): ${r.stderr.trim()}`);
}

export interface QuailProcess {
  readonly child: ChildProcess;
  /** The last 20,000 characters of its stdout and stderr (the event log). */
  log(): string;
  /** SIGTERM, then waits for it to exit (SIGKILL after 30 s). Idempotent. */
  stop(): Promise<void>;
}

export interface QuailStartOptions {
  /** Arguments after `start --root ROOT --smtp 127.0.0.1:0 --submission 127.0.0.1:0` (e.g. `--pop3 none`). */
  readonly args?: readonly string[];
  /** Called with every complete line of its event log (stdout), as it arrives. */
  readonly onLine?: (line: string) => void;
  /** How long `quail.started` may take (recovery and the first scan of a full queue come before it); default 30 s. */
  readonly startTimeoutMs?: number;
  /** Serve control/listeners as written (no `--smtp`/`--submission` overrides). */
  readonly ownListeners?: boolean;
}

/**
 * `quail start` in its own process group, resolved once it logged quail.started. SIGINT/SIGTERM to the bench
 * while it runs stop it first (a detached child would outlive a ^C).
 */
export async function startQuailProcess(root: string, o: QuailStartOptions = {}): Promise<QuailProcess> {
  const child = spawn(
    process.execPath,
    [
      // e.g. --cpu-prof --cpu-prof-dir=DIR: forked children inherit the flags (docs/PERFORMANCE.md, How it was measured)
      ...(process.env.QUAIL_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
      QUAIL_MAIN,
      'start',
      '--root',
      root,
      ...(o.ownListeners === true ? [] : ['--smtp', '127.0.0.1:0', '--submission', '127.0.0.1:0']),
      ...(o.args ?? []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let text = '';
  let partial = '';
  const keep = (c: Buffer): void => {
    text = (text + c.toString()).slice(-20_000);
  };
  child.stdout?.on('data', (c: Buffer) => {
    keep(c);
    if (o.onLine === undefined) return;
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) o.onLine(line);
  });
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((r) =>
    child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
  );
  const onSignal = (): void => {
    child.kill('SIGTERM');
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };
  const limit = Date.now() + (o.startTimeoutMs ?? 30_000);
  while (!text.includes('quail.started')) {
    if (child.exitCode !== null || Date.now() > limit) {
      await stop();
      throw new Error(`quail start did not start: ${text}`);
    }
    await sleep(50);
  }
  return { child, log: () => text, stop };
}
