// What every tool is given and returns: argv, environment, standard descriptors, the mail root; an exit code.
import type { Writable } from 'node:stream';

/** One run of a tool: plain data plus the process's streams, so tests can run a tool in-process. */
export interface ToolIo {
  /** Arguments after the tool's name. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Standard input as a descriptor: 0 in the CLI; tools that rewind it (condredirect) need a regular file. */
  readonly stdinFd: number;
  readonly stdout: Writable;
  /** Writes to standard error (qmail's strerr lines end in `\n`). */
  readonly stderr: (text: string) => void;
  /** The mail root, whose queue forward, condredirect and qreceipt write. */
  readonly root: string;
  /** How to run quail itself: `[node, main.js]` (datemail and mailsubj run `quail sendmail`/`quail inject`). */
  readonly quail: readonly string[];
  readonly now?: () => Date;
}

/** Writes `text` to stderr with a newline and returns `code`: strerr_die's habit. */
export function die(io: ToolIo, code: number, text: string): number {
  io.stderr(`${text}\n`);
  return code;
}
