// One delivery attempt per channel (qmail-lspawn / qmail-rspawn's share of qmail-send): job in, result and report out.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { outcomeFromError, splitAddress, type DeliveryResult } from '../core/index.js';
import { textBytes } from '../bounce/index.js';
import type { ForwardRequest, LocalJob } from '../local/types.js';
import type { QueueId } from '../queue/types.js';
import type { Assignment } from '../users/types.js';
import { queueSettings, type SchedulerSettings } from './settings.js';
import { chooseQueue, DEFAULT_QUEUE, type QueueChoice } from '../queues/index.js';
import type { MessageState } from './state.js';
import type { SchedulerDeps } from './types.js';
import { verpSender } from './verp.js';

export interface DeliveryContext {
  readonly deps: SchedulerDeps;
  readonly settings: SchedulerSettings;
  /** A number for the `qp N` of a queued forward or bounce (qmail-queue's pid in qmail). */
  nextQp(): number;
  /** Tells the scheduler that it queued a message itself (forward, bounce): scan again. */
  queued(): void;
}

/** The result alone: a local result's forward (queued here) does not travel on. */
const only = (r: DeliveryResult): DeliveryResult => ({
  result: r.result,
  report: r.report,
  ...(r.code !== undefined ? { code: r.code } : {}),
});

const withNewline = (s: string): string => (s === '' || s.endsWith('\n') ? s : `${s}\n`);

/** The envelope's record of why a message is in a named queue (nothing for `default` by no rule: qmail's envelope). */
export function queueMeta(c: QueueChoice): Record<string, string> {
  return c.queue === DEFAULT_QUEUE && c.why === 'no rule matched' ? {} : { queuerule: c.why };
}

/** Anything thrown becomes a result: temporary (the default for unknown errors) or permanent. */
export function fromError(err: unknown): DeliveryResult {
  const o = outcomeFromError(err);
  return { result: o.kind === 'permanent' ? 'failure' : 'deferral', report: withNewline(o.report) };
}

async function* prepended(prefix: string, path: string): AsyncGenerator<Buffer> {
  yield textBytes(prefix);
  for await (const chunk of createReadStream(path)) yield chunk as Buffer;
}

/** Queues a forward as qmail-local would (D.7.4): DTLINE + the message as queued, NEWSENDER, the targets. */
async function queueForward(
  ctx: DeliveryContext,
  msg: MessageState,
  via: string,
  fwd: ForwardRequest,
): Promise<QueueId> {
  const q = ctx.deps.queue;
  // A forward is a new message: the queue rules choose its queue as for any other (control/queuerules).
  const q2 = chooseQueue(ctx.settings.rules, { sender: fwd.sender, recipients: fwd.recipients });
  return q.inject({
    sender: fwd.sender,
    recipients: fwd.recipients,
    data: Readable.from(prepended(fwd.prepend, q.messagePath(msg.id))),
    injector: fwd.injector,
    meta: { origin: 'forward', parent: msg.id, via, ...queueMeta(q2) },
    queueName: q2.queue,
  });
}

/** The local channel: users' lookupAssignment, then the local deliverer; a forward is queued before success counts. */
export async function attemptLocal(ctx: DeliveryContext, msg: MessageState, address: string): Promise<DeliveryResult> {
  const { deps, settings } = ctx;
  const { local, domain } = splitAddress(address);
  // C.3.1: an empty local part is "delivered" into nothing.
  if (local === '') return { result: 'success', report: '' };
  let a: Assignment;
  try {
    a = deps.lookupAssignment({ root: deps.root, local, passwd: deps.passwd });
  } catch (err) {
    return fromError(err);
  }
  // C.3.5: qmail-lspawn refuses uid 0.
  if (a.uid === 0) return { result: 'deferral', report: 'Not allowed to perform deliveries as root.\n' };
  const job: LocalJob = {
    user: a.user,
    uid: a.uid,
    gid: a.gid,
    home: a.home,
    local,
    dash: a.dash,
    ext: a.ext,
    domain,
    sender: verpSender(msg.sender, address),
    defaultDelivery: settings.defaultDelivery,
    messagePath: deps.queue.messagePath(msg.id),
    root: deps.root,
    via: a.via,
  };
  const r = await deps.local(job);
  if (r.result !== 'success' || r.forward === undefined || r.forward.recipients.length === 0) {
    return only(r);
  }
  // The forward is queued before the delivery counts as done: a crash in between repeats the delivery.
  let id: QueueId;
  try {
    id = await queueForward(ctx, msg, address, r.forward);
  } catch (err) {
    const o = outcomeFromError(err);
    return { result: 'deferral', report: `Unable to forward message: ${o.report} (#4.3.0)\n` };
  }
  ctx.queued();
  const qp = ctx.nextQp();
  deps.logger.event('forward', { msg: msg.id, via: address, qp, id });
  return { result: 'success', report: `${withNewline(r.report)}qp ${qp}\n` };
}

/** The remote channel: the remote deliverer, with the VERP sender. */
export async function attemptRemote(ctx: DeliveryContext, msg: MessageState, address: string): Promise<DeliveryResult> {
  const { remote } = queueSettings(ctx.settings, msg.queueName);
  const r = await ctx.deps.remote({
    recipient: address,
    sender: verpSender(msg.sender, address),
    messagePath: ctx.deps.queue.messagePath(msg.id),
    meta: msg.meta,
    ...(Object.keys(remote).length > 0 ? { policy: remote } : {}),
  });
  return only(r);
}
