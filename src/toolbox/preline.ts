// preline: qmail's preline(1) — the message to a program with UFLINE, RPLINE and DTLINE in front (for mbox MDAs).
import { pipeline } from 'node:stream/promises';
import { runChild } from './child.js';
import { die, envBuffer, type ToolIo } from './io.js';
import { readOn } from './stdin.js';

const USAGE = 'preline: usage: preline cmd [ arg ... ]';
const FATAL = 'preline: fatal: ';

/** getopt over `frdFRD` up to the first non-option (or `--`); null on an unknown option. */
function options(argv: readonly string[]): { uf: boolean; rp: boolean; dt: boolean; rest: string[] } | null {
  const f = { uf: true, rp: true, dt: true };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-') || a === '-') break;
    for (const c of a.slice(1)) {
      if (c === 'f' || c === 'F') f.uf = c === 'F';
      else if (c === 'r' || c === 'R') f.rp = c === 'R';
      else if (c === 'd' || c === 'D') f.dt = c === 'D';
      else return null;
    }
  }
  return { ...f, rest: argv.slice(i) };
}

/**
 * Exit: the program's own status; 100 for a usage error or a program that cannot be run (111 when execvp's error
 * is temporary); 111 when the program crashed. UFLINE, RPLINE and DTLINE must be set (qmail-local sets them).
 */
export async function preline(io: ToolIo): Promise<number> {
  const uf = envBuffer(io, 'UFLINE');
  const rp = envBuffer(io, 'RPLINE');
  const dt = envBuffer(io, 'DTLINE');
  if (uf === undefined || rp === undefined || dt === undefined) return die(io, 100, USAGE);
  const o = options(io.argv);
  if (o === null || o.rest.length === 0) return die(io, 100, USAGE);
  const head = Buffer.concat([...(o.uf ? [uf] : []), ...(o.rp ? [rp] : []), ...(o.dt ? [dt] : [])]);
  let copyError: Error | undefined;
  const exit = await runChild(o.rest, {
    env: io.env,
    stdin: 'pipe',
    stdout: 'inherit',
    onStdin: (w) => {
      w.write(head);
      pipeline(readOn(io.stdinFd), w).catch((err: unknown) => {
        // A program that stops reading early (EPIPE) is judged by its exit status below.
        if ((err as NodeJS.ErrnoException).code !== 'EPIPE') copyError = err as Error;
      });
    },
  });
  if (exit.kind === 'unable')
    return die(io, exit.temporary ? 111 : 100, `${FATAL}unable to run ${o.rest[0] ?? ''}: ${exit.text}`);
  if (exit.kind === 'crashed') return die(io, 111, `${FATAL}child crashed`);
  if (copyError !== undefined) return die(io, 111, `${FATAL}unable to copy input: ${copyError.message}`);
  return exit.code;
}
