// Shared CLI helpers: the mail root choice, qmail-style exit codes, errors without stack traces.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { errText, isFullDisk, QuailError } from '../core/index.js';

/** --root DIR, else $QUAIL_ROOT, else ./var/quail (absolute). */
export function resolveRoot(opt: string | undefined): string {
  return resolve(opt ?? process.env['QUAIL_ROOT'] ?? './var/quail');
}

export function addRootOption(cmd: Command): Command {
  return cmd.option('--root <dir>', 'mail root (default: $QUAIL_ROOT, else ./var/quail)');
}

/** An error a command reports to its user: exit 100 (permanent) or 111 (temporary). */
export class CliError extends QuailError {}

export const usageError = (msg: string): CliError => new CliError(msg, false);

/** A file a command is about to write, absolute; its directory missing is the user's mistake (exit 100), said so. */
export function writableTarget(file: string): string {
  const abs = resolve(file);
  if (statSync(dirname(abs), { throwIfNoEntry: false })?.isDirectory() !== true)
    throw usageError(
      `cannot write ${abs}: the directory ${dirname(abs)} does not exist (make it first, or choose another)`,
    );
  return abs;
}

const FULL_DISK_HINT = ' (the file system is full: free some space, `df` shows where, and run the command again)';

/**
 * Runs a command body; prints `quail NAME: fatal: message` on failure and exits 100/111.
 * Unknown errors are temporary (111) and never print a stack trace unless QUAIL_DEBUG is set.
 */
export function action<A extends unknown[]>(
  name: string,
  body: (...args: A) => Promise<number | void> | number | void,
) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await body(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      const temporary = !(err instanceof QuailError) || err.temporary;
      const msg = errText(err) + (isFullDisk(err) ? FULL_DISK_HINT : '');
      process.stderr.write(`quail ${name}: fatal: ${msg}\n`);
      if (process.env['QUAIL_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
      process.exitCode = temporary ? 111 : 100;
    }
  };
}
