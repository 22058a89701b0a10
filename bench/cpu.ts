// CPU time of a process tree from /proc: what a server spent, whatever process did the work.
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const TICK_MS = 1000 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100);

interface Stat {
  readonly ppid: number;
  /** Its own CPU in whole ticks (utime + stime), ms: used only where schedstat cannot be read. */
  readonly ownTicksMs: number;
  /** Its exited children's CPU (cutime + cstime), ms. */
  readonly childrenMs: number;
}

/**
 * The process's own CPU in ms, to the nanosecond: the sum of its threads' run time from schedstat. /proc/PID/stat's
 * utime and stime are whole clock ticks (10 ms) per process, so a short phase spread over many processes (Postfix's
 * ten smtpd taking two messages each) can read as no CPU at all. Undefined where schedstat cannot be read.
 */
function ownMs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const first = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0];
      ns += Number(first);
    }
    return Number.isFinite(ns) ? ns / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

function readStat(pid: number): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the command name (field 2) may hold spaces and parentheses: fields count from the last ')'
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const n = (i: number): number => Number(f[i - 3]);
    return { ppid: n(4), ownTicksMs: (n(14) + n(15)) * TICK_MS, childrenMs: (n(16) + n(17)) * TICK_MS };
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds of CPU (user + system) used so far by `root` and every process below it, counting the exited
 * ones through their parents' cutime/cstime: so the difference between two readings is what the tree spent
 * between them, including processes that started or ended in between.
 */
export function treeCpuMs(root: number): number {
  return [...treeCpuByPid(root).values()].reduce((n, p) => n + p.ms, 0);
}

/** Which part of quail (or Postfix) a process is, from its command line: the script's name, else the program's. */
function roleOf(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    const script = argv.find((a) => /\.js$/.test(a));
    return (script ?? argv[0] ?? '?').split('/').pop() ?? '?';
  } catch {
    return '?';
  }
}

/** One process of a treeCpuByPid reading. */
export interface Reading {
  readonly role: string;
  readonly ppid: number;
  /** Its own CPU and its exited children's, ms. */
  readonly ms: number;
}

/**
 * The CPU of each live process of the tree so far (ms, its own and its exited children's), with its role; read
 * before and after a load, the differences say which process spent what (cpuByRole).
 */
export function treeCpuByPid(root: number): Map<number, Reading> {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const s = readStat(pid);
    if (s) stats.set(pid, s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  const out = new Map<number, Reading>();
  const todo = [root];
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    const s = stats.get(pid);
    // schedstat only for the tree's processes (every process's stat is read, to find the tree)
    const ms = s === undefined ? 0 : (ownMs(pid) ?? s.ownTicksMs) + s.childrenMs;
    out.set(pid, { role: roleOf(pid), ppid: s?.ppid ?? 0, ms });
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * CPU ms spent between two treeCpuByPid readings, by role (processes born in between count from zero).
 *
 * A process of the first reading that has ended by the second took its whole CPU into its parent's cutime/cstime,
 * including what it had spent before the first reading: that part is taken off again, from the role of the nearest
 * ancestor still alive (where it now shows). Without this, a server whose worker processes end during the load
 * (Postfix's smtpd and cleanup after a warm-up) is charged their earlier CPU as well.
 */
export function cpuByRole(
  before: ReadonlyMap<number, Reading>,
  after: ReadonlyMap<number, Reading>,
): Map<string, number> {
  const out = new Map<string, number>();
  const add = (role: string, ms: number): void => void out.set(role, (out.get(role) ?? 0) + ms);
  for (const [pid, a] of after) add(a.role, a.ms - (before.get(pid)?.ms ?? 0));
  for (const [pid, b] of before) {
    if (after.has(pid)) continue;
    let up = b.ppid;
    for (let hops = 0; !after.has(up) && before.has(up) && hops < 64; hops++) up = before.get(up)?.ppid ?? 0;
    add(after.get(up)?.role ?? b.role, -b.ms);
  }
  return out;
}
