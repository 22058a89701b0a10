// Runs one delivery scenario on quail in-process: world, newu, sinks, queue + scheduler + local + remote, steps.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Control } from '../../../src/control/index.js';
import { LocalDeliverer } from '../../../src/local/index.js';
import { openQueue, type QueueId } from '../../../src/queue/index.js';
import { deliverRemote } from '../../../src/remote/index.js';
import { Scheduler } from '../../../src/scheduler/index.js';
import { lookupAssignment, tablePasswd } from '../../../src/users/index.js';
import type { Scenario } from '../types.js';
import { decodeBytes, setupWorld, textBytes, quailCli, type Placeholders, type ScenarioAccount } from '../world.js';
import { writeToolboxBin } from '../../../src/toolbox/index.js';
import { snapshot, type Snapshot } from './files.js';
import { Sinks, type SinkTransaction } from './sinks.js';

export interface Event {
  readonly name: string;
  readonly fields: Record<string, string | number>;
  /** Seconds after the scenario start (fake clock). */
  readonly t: number;
}

export interface RunOutput {
  readonly ph: Placeholders;
  readonly passwd: ScenarioAccount[];
  readonly started: boolean;
  readonly newu?: { exit: number | null; stdout: string; stderr: string; cdb: Buffer | null };
  /** Queue ids of the injected messages, in input.messages order (undefined if never injected). */
  readonly injected: Array<QueueId | undefined>;
  readonly events: Event[];
  readonly before: Snapshot;
  readonly after: Snapshot;
  readonly remote: SinkTransaction[];
}

interface InputMessage {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly data: unknown;
  readonly inject_as?: string;
}

type Step =
  | { action: 'inject'; message: number }
  | { action: 'settle' }
  | { action: 'sleep'; seconds: number }
  | { action: 'signal'; signal: 'HUP' | 'ALRM' }
  | { action: 'write_control'; file: string; content: string };

function writeControl(qmail: string, name: string, content: string | Buffer): void {
  const p = join(qmail, 'control', name);
  writeFileSync(p, content);
  chownSync(p, 0, 0);
  chmodSync(p, 0o644);
}

/** FORMAT.md 3.1: users/assign then `quail newu`, as the oracle ran qmail-newu. */
function runNewu(qmail: string, assign: unknown, subst: (t: string) => string): NonNullable<RunOutput['newu']> {
  // Home directories in the assign lines name @ROOT@ (FORMAT.md 1.1): substituted like every other input.
  writeFileSync(
    join(qmail, 'users', 'assign'),
    typeof assign === 'string' ? textBytes(subst(assign)) : decodeBytes(assign),
  );
  const env = { ...process.env };
  delete env['QUAIL_ROOT'];
  const r = spawnSync(process.execPath, [quailCli(), 'newu', '--root', qmail], { env, encoding: 'latin1' });
  const cdbPath = join(qmail, 'users', 'cdb');
  return {
    exit: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    cdb: existsSync(cdbPath) ? readFileSync(cdbPath) : null,
  };
}

export async function runDelivery(s: Scenario, workDir: string): Promise<RunOutput> {
  const { ph, passwd } = setupWorld(workDir, s);
  // @QMAIL@/bin holds qmail's programs for `|preline ...` lines (FORMAT.md 2: the programs' PATH starts there); quail's
  // are its toolbox scripts, written there by quail init and quail start as here.
  await writeToolboxBin(ph.qmail, [process.execPath, quailCli()]);
  const input = s.input;
  const control = (input['control'] ?? {}) as Record<string, unknown>;
  for (const [name, content] of Object.entries(control)) {
    writeControl(ph.qmail, name, typeof content === 'string' ? textBytes(ph.subst(content)) : decodeBytes(content));
  }
  // Bounces are RFC 3464 by default in quail; the oracle's are QSBMF (normalise.ts has no rule for this: the
  // runner asks for qmail's format instead, so bounces compare byte for byte).
  if (!('bounceformat' in control)) writeControl(ph.qmail, 'bounceformat', 'qsbmf\n');
  // An address with 8-bit bytes goes only to a server offering SMTPUTF8 in quail (RFC 6531); qmail-remote sends it
  // quoted, as it is. The runner asks for qmail's way, as for bounces (README, "Normalisations").
  if (!('smtputf8' in control)) writeControl(ph.qmail, 'smtputf8', 'qmail\n');
  // qmail-start's argument is quail's control/defaultdelivery.
  const dd = input['defaultdelivery'];
  if (typeof dd === 'string') writeControl(ph.qmail, 'defaultdelivery', textBytes(ph.subst(dd)));
  const newu =
    input['users_assign'] === null || input['users_assign'] === undefined
      ? undefined
      : runNewu(ph.qmail, input['users_assign'], ph.subst);

  const before = snapshot([ph.root, join(ph.qmail, 'alias')]);
  const start = Math.floor(Date.now() / 1000);
  let now = start;
  const events: Event[] = [];
  const sinks = await Sinks.start();
  const queue = await openQueue(ph.qmail, { clock: () => now * 1000 });
  const local = new LocalDeliverer({ path: `${ph.qmail}/bin:/usr/bin:/bin` });
  const scheduler = new Scheduler({
    root: ph.qmail,
    queue,
    control: () => new Control(ph.qmail),
    clock: () => now,
    passwd: tablePasswd(passwd),
    logger: { event: (name, fields) => events.push({ name, fields, t: now - start }) },
    lookupAssignment,
    local: (job) => local.deliver(job),
    remote: (job) => deliverRemote(job, { control: new Control(ph.qmail) }),
    // Timers never fire: time moves only when a step says so (see README: ret-* without real sleeping).
    timers: { set: () => undefined, clear: () => undefined },
  });
  const messages = (input['messages'] ?? []) as InputMessage[];
  const injected: Array<QueueId | undefined> = messages.map(() => undefined);
  let started = true;
  try {
    try {
      await scheduler.start();
    } catch {
      started = false;
    }
    const steps: Step[] = (input['steps'] as Step[] | undefined) ?? [
      ...messages.map((_, i): Step => ({ action: 'inject', message: i })),
      { action: 'settle' },
    ];
    for (const step of started ? steps : []) {
      switch (step.action) {
        case 'inject': {
          const m = messages[step.message];
          if (m === undefined) throw new Error(`step injects message ${step.message}, which does not exist`);
          const uid = m.inject_as === undefined ? 0 : passwd.find((p) => p.name === m.inject_as)?.uid;
          if (uid === undefined) throw new Error(`inject_as ${String(m.inject_as)} is not in passwd`);
          injected[step.message] = await queue.inject({
            sender: m.sender,
            recipients: m.recipients,
            data: typeof m.data === 'string' ? textBytes(ph.subst(m.data)) : decodeBytes(m.data),
            injector: { kind: 'uid', uid },
          });
          break;
        }
        case 'settle':
          await scheduler.runUntilIdle();
          break;
        case 'sleep':
          // One second at a time, so retries happen at the second they are due (as with real sleeping).
          for (let i = 0; i < step.seconds; i++) {
            now++;
            await scheduler.runUntilIdle();
          }
          break;
        case 'signal':
          if (step.signal === 'HUP') scheduler.reload();
          else scheduler.flush();
          break;
        case 'write_control':
          writeControl(ph.qmail, step.file, textBytes(ph.subst(step.content)));
          break;
      }
    }
    // The oracle's harness always waited for quiet at the end, whatever the last step was.
    if (started) await scheduler.runUntilIdle();
  } finally {
    await scheduler.stop();
    await local.close();
    queue.close();
    await sinks.close();
  }
  const after = snapshot([ph.root, join(ph.qmail, 'alias')]);
  return {
    ph,
    passwd,
    started,
    ...(newu ? { newu } : {}),
    injected,
    events,
    before,
    after,
    remote: sinks.transactions(),
  };
}
