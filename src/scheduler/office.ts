// The office channel (issue 16): a mailbox of another office goes there by SMTP in one hop, never twice.
import type { MapEntry } from '../control/index.js';
import type { DeliveryResult } from '../core/index.js';
import { route } from '../route/index.js';
import { attemptLocal, attemptRemote, type DeliveryContext } from './deliver.js';
import { queueSettings } from './settings.js';
import type { MessageState } from './state.js';
import { verpSender } from './verp.js';

const line = (value: string): MapEntry => ({ pattern: '', value, line: 0, text: `:${value}` });

/**
 * Decides again at each attempt, from the router's table: the mailbox may have moved here (then it is delivered as
 * any local address), its office may be unknown for now (deferral), or it lives at another office: then, unless the
 * message itself came from an office (one hop only: delivered here, below), the remote engine delivers it to that
 * office's `host:port` as if smtproutes said so for this recipient alone.
 */
export async function attemptOffice(ctx: DeliveryContext, msg: MessageState, address: string): Promise<DeliveryResult> {
  const offices = ctx.deps.offices;
  const place = offices?.place(address) ?? { kind: 'here' as const };
  if (place.kind === 'here') {
    const d = route(address, ctx.settings.route);
    return d.channel === 'local' ? attemptLocal(ctx, msg, d.address) : attemptRemote(ctx, msg, d.address);
  }
  if (place.kind === 'unknown')
    return { result: 'deferral', report: `Unable to tell which office holds ${address}: ${place.why} (#4.3.0)\n` };
  // One hop only. Another office's message was accepted here only because the mailbox lived here at its RCPT (an
  // office's client is refused 451 for a mailbox placed elsewhere: src/start/directory-link.ts), so it moved since:
  // the message is delivered here, never passed on, and the move carries the late file to the mailbox's new office
  // (src/offices/README.md, "New mail during the move"). Deferring it instead left it waiting for good.
  if (offices?.cameFrom(msg.meta) != null) {
    const d = route(address, ctx.settings.route);
    return d.channel === 'local' ? attemptLocal(ctx, msg, d.address) : attemptRemote(ctx, msg, d.address);
  }
  const where = `${place.host}:${place.port}`;
  const { remote } = queueSettings(ctx.settings, msg.queueName);
  const r = await ctx.deps.remote({
    recipient: address,
    sender: verpSender(msg.sender, address),
    messagePath: ctx.deps.queue.messagePath(msg.id),
    meta: msg.meta,
    via: `office:${place.office}`,
    policy: {
      ...remote,
      routes: new Map([['', line(where)]]),
      ...(place.tls !== '' ? { tlsdestinations: new Map([['', line(place.tls)]]) } : {}),
    },
  });
  return {
    result: r.result,
    report: `Office ${place.office} (${where}): ${r.report}`,
    ...(r.code !== undefined ? { code: r.code } : {}),
  };
}
