// Program delivery (docs/QMAIL.md D.7.3): /bin/sh -c in the home directory, umask 077, message on stdin.
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { errorStr } from './errstr.js';

export type ProgramExit =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'signal' }
  | { readonly kind: 'spawn-error'; readonly text: string };

/** One piece of output, in arrival order, with the descriptor it was written to. */
export interface OutputChunk {
  readonly fd: 1 | 2;
  readonly data: Buffer;
}

/**
 * The umask must be 077 for the program only (pg-009); Node cannot set it per child and process.umask() would
 * change it for the whole server, so a tiny /bin/sh sets it and execs the real `/bin/sh -c <command>`
 * (whose $0 stays `/bin/sh`, as with qmail).
 */
const WRAPPER = 'umask 077 && exec /bin/sh -c "$1"';

/** Runs one program line; stdin is a fresh descriptor of the message file at offset 0 (the message as queued). */
export function runProgram(
  command: string,
  o: { home: string; env: Record<string, string>; messagePath: string; onOutput: (c: OutputChunk) => void },
): Promise<ProgramExit> {
  let stdin: number;
  try {
    stdin = openSync(o.messagePath, 'r');
  } catch {
    return Promise.resolve({ kind: 'spawn-error', text: 'Unable to rewind message. (#4.3.0)' });
  }
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ProgramExit): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    try {
      const child = spawn('/bin/sh', ['-c', WRAPPER, 'sh', command], {
        cwd: o.home,
        env: o.env,
        stdio: [stdin, 'pipe', 'pipe'],
        argv0: '/bin/sh',
      });
      child.stdout?.on('data', (data: Buffer) => o.onOutput({ fd: 1, data }));
      child.stderr?.on('data', (data: Buffer) => o.onOutput({ fd: 2, data }));
      child.on('error', (err) =>
        done({ kind: 'spawn-error', text: `Unable to run /bin/sh: ${errorStr(err)}. (#4.3.0)` }),
      );
      child.on('close', (code, signal) => {
        if (signal !== null || code === null) done({ kind: 'signal' });
        else done({ kind: 'exit', code });
      });
    } catch (err) {
      done({ kind: 'spawn-error', text: `Unable to run /bin/sh: ${errorStr(err)}. (#4.3.0)` });
    } finally {
      closeSync(stdin);
    }
  });
}

/** qmail-local's reading of a program's exit status (D.7.3). */
export function programVerdict(code: number): 'ok' | 'stop' | 'permanent' | 'temporary' {
  if (code === 0) return 'ok';
  if (code === 99) return 'stop';
  if ([64, 65, 70, 76, 77, 78, 100, 112].includes(code)) return 'permanent';
  return 'temporary';
}
