// quail status: is quail running for this root, on which listeners, what is queued, what went wrong lately.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { listHeld, lockDescription, readLastPush, waiting } from '../held/index.js';
import { openQueue } from '../queue/index.js';
import { parseTable, tableFile, type OfficeTable } from '../offices/index.js';
import type { ServiceName } from './privchild.js';
import { errorsFile, runningPid, stateFile, type RunState } from './supervisor.js';

export interface QueueCounts {
  readonly messages: number;
  readonly held: number;
  /** Recipients by state: todo (not yet routed), pending (deferred or in progress), done, failed. */
  readonly recipients: Readonly<Record<'todo' | 'pending' | 'done' | 'failed', number>>;
  /** Messages by named queue (control/queues), `default` included; only queues with messages. */
  readonly byQueue: Readonly<Record<string, number>>;
  /** Files in queue/corrupt/: damaged or unexplained files recovery moved aside (never deleted; docs/QUEUE.md). */
  readonly corrupt: number;
}

export interface Status {
  readonly running: boolean;
  readonly pid?: number;
  readonly state?: RunState;
  readonly queue: QueueCounts | { readonly error: string };
  readonly recentErrors: readonly string[];
  /** Held domains (src/held): mail waiting, the last push (LASTPUSH, unix seconds) and its result. */
  readonly held: readonly HeldStatus[];
  /** Offices (control/office): this server's office and the age of its mailbox→office table (run/offices.json). */
  readonly offices?: OfficeStatus;
}

export interface HeldStatus {
  readonly domain: string;
  readonly host: string;
  readonly waiting: number;
  readonly lastPush: number | null;
  readonly lastResult: string | null;
  /** RELAYHOST's lock: `free`, or who holds it (a push running: quail's, or a setlock script's). */
  readonly lock: string;
}

async function heldStatus(root: string): Promise<HeldStatus[]> {
  try {
    const out: HeldStatus[] = [];
    for (const h of listHeld(root, new Control(root))) {
      const last = readLastPush(h.home);
      out.push({
        domain: h.domain,
        host: h.relayhost,
        waiting: await waiting(h.maildir),
        lastPush: last?.at ?? null,
        lastResult: last === undefined ? null : `${last.reached ? '' : 'not reached: '}${last.result}`,
        lock: await lockDescription(h.lockPath),
      });
    }
    return out;
  } catch {
    return [];
  }
}

export interface OfficeStatus {
  readonly office: string;
  /** When the table was last read from the directory (ISO), and its age in seconds; absent: never. */
  readonly loaded?: string;
  readonly ageSeconds?: number;
  readonly offices?: number;
  readonly mailboxes?: number;
}

function officeStatus(root: string): OfficeStatus | undefined {
  let office: string | null;
  try {
    office = new Control(root).single('office').value;
  } catch {
    return undefined;
  }
  if (office === null || office === '') return undefined;
  let table: OfficeTable | null = null;
  try {
    table = parseTable(readFileSync(tableFile(root), 'utf8'));
  } catch {
    table = null;
  }
  if (table === null) return { office };
  return {
    office,
    loaded: new Date(table.loaded).toISOString(),
    ageSeconds: Math.max(0, Math.round((Date.now() - table.loaded) / 1000)),
    offices: table.offices.length,
    mailboxes: Object.keys(table.homes).length,
  };
}

/** How many files queue/corrupt/ holds (0 when it does not exist). */
function corruptCount(root: string): number {
  try {
    return readdirSync(join(root, 'queue', 'corrupt')).length;
  } catch {
    return 0;
  }
}

export async function readStatus(root: string, errorLines = 10): Promise<Status> {
  const pid = runningPid(root);
  let state: RunState | undefined;
  if (pid !== undefined) {
    try {
      state = JSON.parse(readFileSync(stateFile(root), 'utf8')) as RunState;
    } catch {
      state = undefined;
    }
  }
  let queue: Status['queue'];
  try {
    const q = await openQueue(root, { create: false });
    const recipients = { todo: 0, pending: 0, done: 0, failed: 0 };
    let messages = 0;
    let held = 0;
    const byQueue: Record<string, number> = {};
    for (const id of await q.ids()) {
      const m = await q.read(id);
      if (!m) continue;
      messages++;
      byQueue[m.queueName] = (byQueue[m.queueName] ?? 0) + 1;
      if (m.held) held++;
      for (const r of m.recipients) recipients[r.status]++;
    }
    q.close();
    queue = { messages, held, recipients, byQueue, corrupt: corruptCount(root) };
  } catch (err) {
    queue = { error: errText(err) };
  }
  let recentErrors: string[] = [];
  try {
    recentErrors = readFileSync(errorsFile(root), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .slice(-errorLines);
  } catch {
    recentErrors = [];
  }
  const offices = officeStatus(root);
  return {
    running: pid !== undefined,
    ...(pid !== undefined ? { pid } : {}),
    ...(state ? { state } : {}),
    queue,
    recentErrors,
    held: await heldStatus(root),
    ...(offices ? { offices } : {}),
  };
}

/** The service processes quail.json may name, as `quail status` calls them. */
const PROCESS_NAMES: ReadonlyArray<readonly [ServiceName, string]> = [
  ['smtpd', 'smtp'],
  ['pop3d', 'pop3'],
  ['metricsd', 'metrics'],
  ['webd', 'web admin'],
  ['odmrd', 'odmr'],
];

export function renderStatus(root: string, s: Status): string {
  const out: string[] = [];
  out.push(s.running ? `quail is running (pid ${s.pid ?? '?'}) for ${root}` : `quail is not running for ${root}`);
  if (s.state) {
    out.push(`started: ${s.state.started}`);
    for (const l of s.state.listeners)
      out.push(`listener: ${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port} ${l.kind}`);
    for (const [name, what] of PROCESS_NAMES) {
      const p = s.state[name];
      if (p)
        out.push(
          p.pids !== undefined && p.pids.length > 1
            ? `${what} processes: pids ${p.pids.join(', ')} as ${p.user} (uid ${p.uid})`
            : `${what} process: pid ${p.pid} as ${p.user} (uid ${p.uid})`,
        );
    }
    const send = s.state.send;
    if (send?.restarting !== undefined)
      out.push(
        `send process: restarting (died ${send.restarting.since}; next start after a back-off of ${send.restarting.backoffMs} ms) as ${send.user} (uid ${send.uid})`,
      );
    else if (send?.pid !== undefined) out.push(`send process: pid ${send.pid} as ${send.user} (uid ${send.uid})`);
    const crashes = Object.entries({
      ...s.state.crashes,
      ...(send && send.restarts > 0 ? { sendd: send.restarts } : {}),
    });
    out.push(`crashes since start: ${crashes.length === 0 ? 'none' : crashes.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }
  if ('error' in s.queue) out.push(`queue: unavailable: ${s.queue.error}`);
  else {
    const r = s.queue.recipients;
    out.push(
      `queue: ${s.queue.messages} messages (${s.queue.held} held); recipients: ${r.todo} todo, ${r.pending} pending, ${r.done} done, ${r.failed} failed`,
    );
    if (s.queue.corrupt > 0)
      out.push(
        `queue/corrupt: ${s.queue.corrupt} files (damaged mail moved aside by recovery, never deleted; see docs/QUEUE.md)`,
      );
    const named = Object.entries(s.queue.byQueue);
    if (named.some(([n]) => n !== 'default')) out.push(`queues: ${named.map(([n, c]) => `${n} ${c}`).join(', ')}`);
  }
  for (const h of s.held)
    out.push(
      `held: ${h.domain} to ${h.host}: ${h.waiting} waiting; last push ${h.lastPush === null ? 'never' : `${new Date(h.lastPush * 1000).toISOString()}: ${h.lastResult ?? ''}`}${h.lock === 'free' ? '' : `; lock ${h.lock}`}`,
    );
  if (s.offices) {
    const o = s.offices;
    out.push(
      o.loaded === undefined
        ? `office: ${o.office}; mailbox→office table: never read from the directory (mail for directory domains waits)`
        : `office: ${o.office}; mailbox→office table: ${o.mailboxes ?? 0} mailboxes in ${o.offices ?? 0} offices, read ${o.ageSeconds ?? 0} s ago (${o.loaded})`,
    );
  }
  if (s.recentErrors.length === 0) out.push('recent errors: none');
  else {
    out.push('recent errors:');
    for (const e of s.recentErrors) out.push(`  ${e}`);
  }
  return `${out.join('\n')}\n`;
}
