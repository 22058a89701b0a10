// The end of a message (qmail-send's messdone): one bounce listing every failure (F.4), then removal.
import { composeBounce, type BounceFailure } from '../bounce/index.js';
import { stripVirtualPrefix } from '../route/index.js';
import { queueMeta, type DeliveryContext } from './deliver.js';
import { chooseQueue, DEFAULT_QUEUE } from '../queues/index.js';
import { queueSettings } from './settings.js';
import type { MessageState } from './state.js';

/** The failed recipients as the bounce names them (channel address, virtual prefix removed: F.6). */
function bounceFailures(ctx: DeliveryContext, msg: MessageState): BounceFailure[] {
  return msg.recipients
    .filter((r) => r.status === 'failed')
    .map((r) => ({
      address: stripVirtualPrefix(r.address ?? r.original, ctx.settings.route),
      report: r.lastReport ?? '',
    }));
}

/**
 * Queues the bounce (or discards a triple bounce), logs `end msg`, removes the message. Throws on a queue
 * error; the caller retries later (a crash after the bounce is queued but before removal sends it twice).
 */
export async function finishMessage(ctx: DeliveryContext, msg: MessageState, now: number): Promise<void> {
  const { deps } = ctx;
  const log = deps.logger;
  const failures = bounceFailures(ctx, msg);
  const config = queueSettings(ctx.settings, msg.queueName).bounce;
  if (failures.length > 0 && !msg.bounced && config === null) {
    // bounces=none (control/queues): the failures are in the delivery events; nobody is told.
    log.event('bounce', { msg: msg.id, kind: 'none', queue: msg.queueName });
    msg.bounced = true;
  }
  if (failures.length > 0 && !msg.bounced && config !== null) {
    const plan = composeBounce({
      config,
      sender: msg.sender,
      failures,
      messagePath: deps.queue.messagePath(msg.id),
      messageSize: msg.size,
      now,
      birth: msg.birth,
      uniqueId: msg.id,
    });
    if (plan.kind === 'triple') {
      log.event('triple_bounce', { msg: msg.id });
    } else {
      const choice = chooseQueue(ctx.settings.rules, {
        sender: plan.sender,
        recipients: [plan.recipient],
        bounce: true,
      });
      const id = await deps.queue.inject({
        sender: plan.sender,
        recipients: [plan.recipient],
        data: plan.data,
        injector: { kind: 'bounce' },
        meta: { origin: 'bounce', parent: msg.id, ...queueMeta(choice) },
        queueName: choice.queue,
      });
      ctx.queued();
      const qp = ctx.nextQp();
      log.event('bounce', {
        msg: msg.id,
        qp,
        id,
        kind: plan.kind,
        to: plan.recipient,
        ...(choice.queue !== DEFAULT_QUEUE ? { queue: choice.queue } : {}),
      });
    }
    msg.bounced = true;
  }
  log.event('end', { msg: msg.id });
  await deps.queue.remove(msg.id);
}
