// Program delivery (docs/QMAIL.md D.7.3): /bin/sh -c in the home directory, umask 077, message on stdin.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { errText } from '../core/index.js';
import { errorStr } from './errstr.js';
import { PROGRAM_KILL_GRACE_MS, signalGroup, type ProgramWatch } from './groups.js';

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

/**
 * The same for a command or environment with bytes of 0x80 and above. quail holds bytes as Latin-1 strings (one
 * character a byte) and Node encodes a child's arguments and environment as UTF-8, so é (0xE9) would reach the
 * program as two bytes where qmail-local gives it one. Such values travel as arguments in printf's `%b` form (ASCII:
 * `\0351` for 0xE9, a backslash doubled) and this shell turns them back into their bytes: the command first, then
 * NAME VALUE pairs, each exported. The `x` after each value keeps the trailing newlines that `$(...)` would drop
 * (RPLINE and DTLINE end with one).
 */
const RAW_WRAPPER =
  'umask 077 || exit 111; _q_c=$(printf %bx "$1"); shift; ' +
  'while [ $# -gt 1 ]; do _q_v=$(printf %bx "$2"); export "$1=${_q_v%x}"; shift 2; done; ' +
  'unset _q_v; exec /bin/sh -c "${_q_c%x}"';

const HIGH = /[\u0080-\u00ff]/;

/** printf %b's form of a Latin-1 string: a backslash doubled, a byte of 0x80 and above as \0 and three octal digits. */
const percentB = (s: string): string =>
  s.replace(/[\\\u0080-\u00ff]/g, (c) => (c === '\\' ? '\\\\' : `\\0${c.charCodeAt(0).toString(8)}`));

/**
 * The gate every program's shell passes first: it waits for a line on fd 3 before it runs anything, and leaves
 * (exit 111, having done nothing) when fd 3 closes without one. runProgram opens it only once the program's group is
 * known to the supervisor (ProgramWatch.started): a process killed between the spawn and that report leaves a shell
 * that reads end-of-file and exits, never a program nobody knows of. fd 3 is then closed, so the program never has it.
 */
const GATE = 'read _q_go <&3 && exec 3<&- || exit 111; ';

/**
 * Under qmail-lspawn a program's standard output and error are one pipe, so its report has them in the order they were
 * written (D.8.2); Node gives a child two pipes, and `exec 2>&1` makes them one again.
 */
const MERGED = 'exec 2>&1; ';

/**
 * /bin/sh's arguments and environment for `command`: the plain wrapper, or RAW_WRAPPER when a byte needs it; with
 * `merged`, the program's stderr is its stdout.
 */
export function shellCall(
  command: string,
  env: Record<string, string>,
  merged = false,
): { args: string[]; env: Record<string, string> } {
  const pre = (merged ? MERGED : '') + GATE;
  const raw = Object.keys(env).filter((k) => HIGH.test(env[k] ?? ''));
  if (raw.length === 0 && !HIGH.test(command)) return { args: ['-c', pre + WRAPPER, 'sh', command], env };
  const plain: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (!raw.includes(k)) plain[k] = v;
  return {
    args: ['-c', pre + RAW_WRAPPER, 'sh', percentB(command), ...raw.flatMap((k) => [k, percentB(env[k] ?? '')])],
    env: plain,
  };
}

/**
 * How much of one program's output is kept (stdout and stderr together); the rest is read and dropped, so the
 * program never blocks on a full pipe. qmail-lspawn keeps only the first 3,000 bytes of a report anyway (spawn.c's
 * truncreport), and a program that writes without end (`|yes`) must not grow the delivering process, which serves
 * every other delivery of its account, until it dies.
 */
export const PROGRAM_OUTPUT_LIMIT = 64 * 1024;

/** The programs running now (their /bin/sh, each the leader of its own process group), for killPrograms. */
const runningPrograms = new Set<ChildProcess>();
/** Who is told of each program group (the process's supervisor); none: the gate opens at once. */
let watch: ProgramWatch | undefined;

/**
 * Tells `w` of every program group this process starts from now on (groups.ts): the delivery worker and the send
 * child report to their supervisor, which ends the groups left behind when the process dies, SIGKILL included.
 */
export function watchPrograms(w: ProgramWatch | undefined): void {
  watch = w;
}

/**
 * The groups' SIGKILL after the grace period, by a detached shell of our uid, since the process that calls
 * killPrograms leaves at once: it looks every 0.1 s whether a group still has a process (kill -0), and SIGKILLs
 * what is left once the steps ($1) are used up.
 */
const REAPER =
  'n=$1; shift; while [ "$n" -gt 0 ]; do l=; for g; do kill -0 -$g 2>/dev/null && l=1; done; ' +
  '[ -z "$l" ] && exit 0; sleep 0.1; n=$((n-1)); done; for g; do kill -KILL -$g 2>/dev/null; done; exit 0';

/**
 * Ends every program line still running in this process, with everything it started, just before the process leaves:
 * its quail parent is gone or the delivery is cut, the delivery will be repeated by the next scheduler, and a program
 * left running would do its work a second time beside it. Each program runs in its own process group (runProgram), so
 * `|sleep 1000; true` or a program that forks dies whole, as qmail-local's child would with its pipe: SIGTERM to each
 * group now, SIGKILL to what is left after `graceMs`. The caller exits right after (nothing else of this process runs
 * again: a cut program's result is never recorded, no new delivery starts), so the SIGKILL is left to a detached
 * reaper shell (REAPER) instead of holding the event loop for the grace period; the supervisor, when it is alive,
 * ends the same groups too (groups.ts ProgramGroups).
 */
export function killPrograms(graceMs = PROGRAM_KILL_GRACE_MS): void {
  const groups = [...runningPrograms].flatMap((c) => (c.pid === undefined ? [] : [c.pid]));
  if (groups.length === 0) return;
  for (const pgid of groups) signalGroup(pgid, 'SIGTERM');
  try {
    const steps = String(Math.max(1, Math.ceil(graceMs / 100)));
    spawn('/bin/sh', ['-c', REAPER, 'reaper', steps, ...groups.map(String)], {
      detached: true,
      stdio: 'ignore',
      env: { PATH: '/usr/bin:/bin' },
    })
      .on('error', () => undefined)
      .unref();
  } catch {
    // no shell to be had: no grace, SIGKILL now
    for (const pgid of groups) signalGroup(pgid, 'SIGKILL');
  }
}

/**
 * Runs one program line; stdin is a fresh descriptor of the message file at offset 0 (the message as queued).
 * `merged`: stderr goes to the stdout pipe, as under qmail-lspawn (every delivery); without it the two stay apart,
 * as when qmail-local is run by hand (`quail local`).
 */
export function runProgram(
  command: string,
  o: {
    home: string;
    env: Record<string, string>;
    messagePath: string;
    onOutput: (c: OutputChunk) => void;
    merged?: boolean;
  },
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
      const call = shellCall(command, o.env, o.merged === true);
      const child = spawn('/bin/sh', call.args, {
        cwd: o.home,
        env: call.env,
        // fd 3: the gate (GATE), opened once the supervisor knows the group
        stdio: [stdin, 'pipe', 'pipe', 'pipe'],
        argv0: '/bin/sh',
        // its own process group: killPrograms ends the program with whatever it started (setsid: a new session too)
        detached: true,
      });
      runningPrograms.add(child);
      const pgid = child.pid;
      let untold: string | undefined;
      const gate = child.stdio[3] as Writable | null;
      gate?.on('error', () => undefined); // the shell gone before it read the gate: its exit says the rest
      if (pgid !== undefined && gate !== null) {
        (watch?.started(pgid) ?? Promise.resolve()).then(
          () => gate.end('go\n'),
          (err: unknown) => {
            // not known to the supervisor: the command must not run (the shell reads end-of-file and exits)
            untold = `Unable to run program: its process group could not be reported to quail's supervisor (${errText(err)}). (#4.3.0)`;
            gate.destroy();
          },
        );
      }
      let kept = 0;
      const take = (fd: 1 | 2, data: Buffer): void => {
        if (kept >= PROGRAM_OUTPUT_LIMIT) return;
        const part = data.length > PROGRAM_OUTPUT_LIMIT - kept ? data.subarray(0, PROGRAM_OUTPUT_LIMIT - kept) : data;
        kept += part.length;
        o.onOutput({ fd, data: part });
      };
      child.stdout?.on('data', (data: Buffer) => take(1, data));
      child.stderr?.on('data', (data: Buffer) => take(2, data));
      const ended = (): void => {
        runningPrograms.delete(child);
        if (pgid !== undefined) watch?.ended(pgid);
      };
      child.on('error', (err) => {
        ended();
        done({ kind: 'spawn-error', text: `Unable to run /bin/sh: ${errorStr(err)}. (#4.3.0)` });
      });
      child.on('close', (code, signal) => {
        ended();
        if (untold !== undefined) done({ kind: 'spawn-error', text: untold });
        else if (signal !== null || code === null) done({ kind: 'signal' });
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
