// Running a program the way qmail's small tools fork and execvp one: PATH search, inherited descriptors, exit status.
import { spawn, type StdioOptions } from 'node:child_process';
import type { Writable } from 'node:stream';

export type ChildExit =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'crashed' }
  /** execvp failed; `temporary` as qmail's error_temp(errno) would say. */
  | { readonly kind: 'unable'; readonly temporary: boolean; readonly text: string };

/** errno names qmail's error_temp() counts as temporary (EINTR, ENOMEM, ETXTBSY, EIO, EAGAIN, ...). */
const TEMP_ERRNO = new Set([
  'EINTR',
  'ENOMEM',
  'ETXTBSY',
  'EIO',
  'EAGAIN',
  'EWOULDBLOCK',
  'ETIMEDOUT',
  'ENFILE',
  'EMFILE',
]);

/**
 * Runs `argv[0]` (searched in env PATH) with `argv`, standard input from `stdin` (a descriptor to share, or
 * 'pipe' to be written by the caller through `onStdin`), stdout and stderr passed through.
 */
export function runChild(
  argv: readonly string[],
  o: {
    env: Readonly<Record<string, string | undefined>>;
    stdin: number | 'pipe';
    stdout: number | 'inherit' | 'pipe';
    onStdin?: (w: Writable) => void;
    onStdout?: (data: Buffer) => void;
  },
): Promise<ChildExit> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.resolve({ kind: 'unable', temporary: false, text: 'no program' });
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ChildExit): void => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const stdio: StdioOptions = [o.stdin, o.stdout, 'inherit'];
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.env)) if (v !== undefined) env[k] = v;
    try {
      const child = spawn(file, args, { env, stdio });
      child.on('error', (err: NodeJS.ErrnoException) =>
        done({ kind: 'unable', temporary: TEMP_ERRNO.has(err.code ?? ''), text: err.code ?? err.message }),
      );
      child.on('close', (code, signal) => {
        if (signal !== null || code === null) done({ kind: 'crashed' });
        else done({ kind: 'exit', code });
      });
      if (child.stdout && o.onStdout) child.stdout.on('data', o.onStdout);
      if (child.stdin && o.onStdin) {
        // EPIPE when the program stops reading early: its exit status decides, not the write.
        child.stdin.on('error', () => undefined);
        o.onStdin(child.stdin);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      done({ kind: 'unable', temporary: TEMP_ERRNO.has(e.code ?? ''), text: e.code ?? String(err) });
    }
  });
}
