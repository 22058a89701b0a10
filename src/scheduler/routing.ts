// A. Routing a new message once: every recipient gets its channel and address, stored before any delivery.
import type { QueueStore, RecipientState } from '../queue/types.js';
import { route, type RouteControl } from '../route/index.js';
import type { MessageState } from './state.js';
import type { OfficeRouter, SchedulerEventName } from './types.js';

type Emit = (name: SchedulerEventName, fields: Record<string, string | number>) => void;

/** Logs `new msg` and `info msg`, routes the unrouted recipients and writes them durably; then updates `st`. */
export async function routeNew(
  queue: Pick<QueueStore, 'updateRecipients'>,
  rc: RouteControl,
  st: MessageState,
  emit: Emit,
  offices?: OfficeRouter,
): Promise<void> {
  const uid = st.meta['uid'];
  emit('new', { msg: st.id });
  emit('info', {
    msg: st.id,
    bytes: st.size,
    from: st.sender,
    ...(uid === undefined ? {} : { uid }),
    // The named queue and the rule that chose it (control/queuerules); nothing for the default queue.
    ...(st.queueName !== 'default' ? { queue: st.queueName, rule: st.meta['queuerule'] ?? '' } : {}),
  });
  const recipients = st.recipients.map((r): RecipientState => {
    if (r.channel !== undefined) return r;
    const d = route(r.original, rc);
    // Offices: a local address whose mailbox lives at another office (or whose office cannot be told yet) goes to
    // the office channel unchanged; that channel decides again at each attempt (src/offices/README.md).
    if (d.channel === 'local' && offices !== undefined && offices.place(r.original).kind !== 'here')
      return { ...r, channel: 'office', address: r.original, status: 'todo' };
    return { ...r, channel: d.channel, address: d.address, status: 'todo' };
  });
  await queue.updateRecipients(st.id, recipients);
  st.recipients = recipients;
}
