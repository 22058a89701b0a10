// A. Routing a new message once: every recipient gets its channel and address, stored with its first written state.
import type { RecipientState } from '../queue/types.js';
import { route, type RouteControl } from '../route/index.js';
import type { MessageState } from './state.js';
import type { OfficeRouter, SchedulerEventName } from './types.js';

type Emit = (name: SchedulerEventName, fields: Record<string, string | number>) => void;

/**
 * Logs `new msg` and `info msg`, routes the unrouted recipients and keeps the routing for the message's first written
 * state (below); then updates `st`.
 */
export function routeNew(rc: RouteControl, st: MessageState, emit: Emit, offices?: OfficeRouter): void {
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
  // The routing is kept in memory and written with the first state that must be written (a deferral, a failure);
  // a message delivered at the first attempt goes straight to removal: one durable envelope rewrite (and its two
  // waits for the disk) less (docs/PERFORMANCE.md). A crash before then leaves the message unrouted on disk, as if
  // never taken up: routed again at restart, with the control files of then, and its deliveries repeated, as a crash
  // during a delivery always did. Until session 8 this held for local-only messages; remote ones had their routing
  // written first, which cost the relay path about as much as the delivery itself.
  st.unsaved = true;
  st.recipients = recipients;
}
