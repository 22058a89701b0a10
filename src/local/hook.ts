// Program lines run in-process instead of by /bin/sh (a `| quail vdeliver` line, vdeliverhook.ts): the hook's types.
import type { UniqueNamer } from '../maildir/index.js';
import type { OutputChunk, ProgramExit } from './program.js';

/** What a program line would have been given: its command (without `|`), environment, home and message. */
export interface ProgramCall {
  readonly command: string;
  readonly env: Readonly<Record<string, string>>;
  readonly home: string;
  readonly messagePath: string;
  /** The message's bytes when qmail-local read it whole (under 64 KiB, run.ts): a hook may use them instead of the file. */
  readonly message?: Buffer;
  readonly namer: UniqueNamer;
}

/** The line's outcome as if the program had run: its exit, its output, and a forward for the caller to queue. */
export interface ProgramHookResult {
  readonly exit: ProgramExit;
  readonly output: readonly OutputChunk[];
  readonly forward?: { readonly sender: string; readonly recipients: readonly string[]; readonly prepend: string };
}

/** null: not a line this hook runs; run the program as usual. */
export type ProgramHook = (call: ProgramCall) => Promise<ProgramHookResult | null>;

/**
 * In-process program lines for LocalDeliverer: the hook for jobs it runs in this process (not root), and the module
 * it forks as each delivery worker (root), which makes its own hook and calls serveDeliveryWorker with it (a hook
 * cannot cross the IPC channel). src/start wires `| quail vdeliver` this way (vdeliver-link.ts).
 */
export interface InProcessPrograms {
  readonly hook: ProgramHook;
  /** Absolute path of the worker's entry module (compiled JavaScript). */
  readonly workerPath: string;
  /** Releases what the hook holds (LocalDeliverer.close). */
  close(): Promise<void>;
}

type Forward = NonNullable<ProgramHookResult['forward']>;

/**
 * The run's one forward: the .qmail's own forward lines (NEWSENDER) plus those the hooked lines returned. The
 * program would have queued its own with SENDER; one ForwardRequest carries one sender, so a mix of two senders
 * is a temporary failure (never met with vpopmail-style domains, whose `.qmail-default` has the one line).
 */
export function mergeForwards(own: Forward | undefined, hooked: readonly Forward[]): Forward | undefined | string {
  const all = [...(own ? [own] : []), ...hooked];
  const first = all[0];
  if (first === undefined) return undefined;
  if (all.some((f) => f.sender !== first.sender || f.prepend !== first.prepend)) {
    return 'Unable to forward: forward lines and vdeliver forwards with different senders in one .qmail file. (#4.3.0)';
  }
  return { sender: first.sender, recipients: all.flatMap((f) => f.recipients), prepend: first.prepend };
}
