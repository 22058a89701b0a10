// The process groups of program lines: the delivering process tells its supervisor of each, which ends those left behind.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A delivering process (a delivery worker, the send child) to its supervisor: program group `pgid` (a `|program`
 * line's /bin/sh, the leader of its own group) runs now, or has ended. Plain data over the IPC channel.
 */
export interface ProgramNote {
  readonly type: 'program';
  readonly pgid: number;
  readonly running: boolean;
}

/** How long a program's processes get to end on SIGTERM before what is left of them is SIGKILLed. */
export const PROGRAM_KILL_GRACE_MS = 2000;
/** How often the supervisor looks in /proc for what is left of the groups during the grace period. */
const POLL_MS = 20;

/** Whether `m` (from another process: nothing is assumed) is a well-formed ProgramNote. */
function isProgramNote(m: unknown): m is ProgramNote {
  if (typeof m !== 'object' || m === null) return false;
  const o = m as Record<string, unknown>;
  // pgid 0 and 1 would be "my own group" and "every process" to kill(2): never a program's group
  return (
    o['type'] === 'program' &&
    Number.isSafeInteger(o['pgid']) &&
    (o['pgid'] as number) > 1 &&
    typeof o['running'] === 'boolean'
  );
}

/** The real uid of process `pid` (/proc/PID/status, `Uid:` real effective saved fs), undefined when gone. */
function realUid(pid: string): number | undefined {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m?.[1] !== undefined ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The groups of `pgids` that still have a live (not zombie) process, from /proc; with `uid`, only those with a live
 * process of that real uid (a group number whose processes are all someone else's is not the program's group any
 * more: it ended, and the number was given again). All of `pgids` if /proc is unreadable and no `uid` is asked for.
 */
function liveGroups(pgids: readonly number[], uid?: number): number[] {
  const wanted = new Set(pgids);
  const live = new Set<number>();
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        // "pid (comm) state ppid pgrp ...": comm may hold anything, so read after its last ')'
        const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const g = Number(pgrp);
        if (state === 'Z' || !wanted.has(g) || live.has(g)) continue;
        if (uid === undefined || realUid(pid) === uid) live.add(g);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return uid === undefined ? [...pgids] : [];
  }
  return pgids.filter((g) => live.has(g));
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // gone already
  }
}

/**
 * Ends the groups of `pgids` that still hold a process of `uid`: SIGTERM, then SIGKILL to what is left after
 * `graceMs`. Waits on timers, never holding the event loop.
 */
async function endGroups(pgids: readonly number[], uid: number, graceMs = PROGRAM_KILL_GRACE_MS): Promise<void> {
  let left = liveGroups(pgids, uid);
  for (const g of left) signalGroup(g, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(POLL_MS);
    left = liveGroups(left, uid);
  }
  for (const g of left) signalGroup(g, 'SIGKILL');
}

/**
 * The supervisor's side, one per delivering process it forked (running as `uid`): the program groups that process
 * said run. When the process is gone — it exited, or was SIGKILLed by an operator, the OOM killer or a timeout, and
 * could not end its programs itself — every group still registered is ended (endGroups), so that no program acts
 * after its delivery was reported failed and is being repeated. A note that arrives after the death (it was read
 * after the exit was seen) ends its group at once.
 */
export class ProgramGroups {
  private readonly running = new Set<number>();
  private gone = false;
  private ending: Promise<void> = Promise.resolve();

  constructor(
    private readonly uid: number,
    private readonly graceMs = PROGRAM_KILL_GRACE_MS,
  ) {}

  /** Takes `m` when it is a program note (true); anything else is left to the caller (false). */
  take(m: unknown): boolean {
    if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== 'program') return false;
    if (!isProgramNote(m)) return true; // malformed: nothing to act on
    if (!m.running) this.running.delete(m.pgid);
    else if (this.gone) this.end([m.pgid]);
    else this.running.add(m.pgid);
    return true;
  }

  /** The process has exited: its groups still registered are ended; resolves when every group ended so far is gone. */
  processGone(): Promise<void> {
    this.gone = true;
    const left = [...this.running];
    this.running.clear();
    if (left.length > 0) this.end(left);
    return this.ending;
  }

  private end(pgids: readonly number[]): void {
    const next = endGroups(pgids, this.uid, this.graceMs);
    this.ending = Promise.all([this.ending, next]).then(() => undefined);
  }
}

/**
 * A supervisor's endings of its dead processes' groups (ProgramGroups.processGone), kept until done, so that its own
 * stop can wait for them (LocalDeliverer.close, SendChild.stop).
 */
export class GroupEndings {
  private readonly pending = new Set<Promise<void>>();

  /** `groups`' process is gone: its groups still registered are ended (settled() waits for it). */
  gone(groups: ProgramGroups): void {
    const ending = groups.processGone();
    this.pending.add(ending);
    void ending.then(() => this.pending.delete(ending));
  }

  /** Resolves when every ending begun so far is done. */
  async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}

/** The delivering process's side: how runProgram tells the supervisor of each group (program.ts watchPrograms). */
export interface ProgramWatch {
  /** Group `pgid` is about to run its command: resolves once the supervisor will hear it even if we die now. */
  started(pgid: number): Promise<void>;
  ended(pgid: number): void;
}

/**
 * A ProgramWatch over this process's IPC channel. process.send's callback runs once the message is written into
 * the channel (the kernel holds it for the supervisor to read, whatever becomes of this process): only then is the
 * program let run its command.
 */
export function ipcProgramWatch(): ProgramWatch {
  return {
    started: (pgid) =>
      new Promise((resolve, reject) => {
        const note: ProgramNote = { type: 'program', pgid, running: true };
        if (!process.connected || process.send === undefined) {
          reject(new Error('the channel to the supervisor is closed'));
          return;
        }
        process.send(note, undefined, {}, (err) => (err ? reject(err) : resolve()));
      }),
    ended: (pgid) => {
      if (process.connected) process.send?.({ type: 'program', pgid, running: false } satisfies ProgramNote);
    },
  };
}
