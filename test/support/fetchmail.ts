// fetchmail and other real clients run as children while the test's own servers keep running in this process.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ChildResult {
  readonly code: number | null;
  readonly out: string;
}

/** A child's exit code and its stdout and stderr together, without blocking the event loop. */
export function runAsync(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildResult> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { env });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', (code) => resolve({ code, out }));
  });
}

/**
 * fetchmail with a home and a pid file of its own. fetchmail refuses to run beside another fetchmail of the same
 * user with the same pid file ("can't poll specified hosts with another fetchmail running"), so tests that run in
 * parallel (as root in CI, where every HOME would otherwise be the same) each get their own.
 */
export function fetchmail(args: readonly string[]): Promise<ChildResult> {
  const home = mkdtempSync(join(tmpdir(), 'quail-fetchmail-'));
  return runAsync('fetchmail', ['--pidfile', join(home, 'fetchmail.pid'), ...args], { ...process.env, HOME: home });
}
