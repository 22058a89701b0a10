// quail explain's queue section: which named queue a message joins (control/queuerules) and that queue's policy.
import type { Control } from '../control/index.js';
import { listenerQueue } from '../start/index.js';
import { chooseQueue, DEFAULT_QUEUE, queuesFrom, rulesFrom, type QueuePolicy } from '../queues/index.js';

export interface QueueQuestion {
  readonly address: string;
  readonly sender?: string;
  /** The listener it would come in on (HOST:PORT), and that listener's queue= option. */
  readonly listener?: string;
  /** The AUTH login it would be sent with. */
  readonly auth?: string;
}

/** Appends the queue section; returns the named queue's policy (undefined for `default`). */
export function explainQueue(control: Control, o: QueueQuestion, out: string[]): QueuePolicy | undefined {
  const rules = rulesFrom(control);
  const own = o.listener === undefined ? undefined : listenerQueue(control.raw('listeners') ?? '', o.listener);
  const choice = chooseQueue(rules, {
    ...(own !== undefined ? { listenerQueue: own } : {}),
    sender: o.sender ?? '',
    recipients: [o.address],
    ...(o.listener !== undefined ? { listener: o.listener } : {}),
    ...(o.auth !== undefined ? { auth: o.auth } : {}),
  });
  out.push('', 'queue:');
  out.push(`  ${choice.queue} (${choice.why})`);
  if (o.sender !== undefined && o.auth === undefined && choice.why.includes(': sender '))
    out.push('  note: the envelope sender is chosen by the client and can be forged; auth rules use the checked login');
  for (const e of rules.errors) out.push(`  warning: control/${e.file} line ${e.line}: ${e.reason} (line ignored)`);
  if (choice.queue === DEFAULT_QUEUE) {
    out.push('  policy: the ordinary control files (queuelifetime, concurrencylocal, concurrencyremote, bounce*, ...)');
    return undefined;
  }
  const p = queuesFrom(control).queues.get(choice.queue);
  if (p === undefined) return undefined;
  const or = (v: string | number | undefined, file: string): string =>
    v === undefined ? `control/${file}` : String(v);
  out.push(
    `  lifetime: ${or(p.lifetime, 'queuelifetime')}`,
    `  retry: ${p.retry === undefined ? "qmail's schedule" : `${p.retry.join(', ')} seconds (last repeats)`}`,
    `  concurrency: local ${or(p.concurrencylocal, 'concurrencylocal')}, remote ${or(p.concurrencyremote, 'concurrencyremote')}`,
    `  bounces: ${p.bounces === 'none' ? 'none (failures are only logged)' : or(p.bounces, 'bounceformat')}` +
      (p.bouncefrom !== undefined || p.bouncehost !== undefined
        ? `, from ${p.bouncefrom ?? 'control/bouncefrom'}@${p.bouncehost ?? 'control/bouncehost'}`
        : ''),
    `  outgoing IP: ${or(p.outgoingip, 'outgoingip')}; HELO ${or(p.helohost, 'helohost')}`,
    `  routes: ${p.routes === undefined ? 'control/smtproutes' : `its own (${p.routes.size} route= lines)`}`,
  );
  return p;
}
