// What every tool is given and returns: argv, environment, standard descriptors, the mail root; an exit code.
import { readFileSync } from 'node:fs';
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
  /**
   * A variable's bytes as the process was given them (the CLI reads /proc/self/environ): Node decodes the environment
   * as UTF-8, so a byte such as 0xE9 in RPLINE (a Latin-1 sender, as qmail-local passes it) would come out as U+FFFD.
   * Without it, or for a variable it does not know, `env`'s UTF-8 is used.
   */
  readonly envBytes?: (name: string) => Buffer | undefined;
}

/** `name`'s value as bytes: `io.envBytes`'s when it has them, else `io.env`'s in UTF-8; undefined when unset. */
export function envBuffer(io: ToolIo, name: string): Buffer | undefined {
  const v = io.env[name];
  if (v === undefined) return undefined;
  return io.envBytes?.(name) ?? Buffer.from(v, 'utf8');
}

/** The process's environment as bytes, from /proc/self/environ (Linux); an empty map where it cannot be read. */
export function environBytes(): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let all: Buffer;
  try {
    all = readFileSync('/proc/self/environ');
  } catch {
    return out;
  }
  for (let at = 0; at < all.length;) {
    let end = all.indexOf(0, at);
    if (end < 0) end = all.length;
    const eq = all.indexOf(0x3d, at);
    if (eq > at && eq < end) out.set(all.toString('latin1', at, eq), all.subarray(eq + 1, end));
    at = end + 1;
  }
  return out;
}

/** Writes `text` to stderr with a newline and returns `code`: strerr_die's habit. */
export function die(io: ToolIo, code: number, text: string): number {
  io.stderr(`${text}\n`);
  return code;
}
