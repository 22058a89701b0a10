// From the scheduler's event log to FORMAT.md 3.2 `messages[]`: labels (m1, m1.f1, m1.b1), deliveries, state.
import type { QueueId } from '../../../src/queue/index.js';
import { logsafe } from '../world.js';
import type { Event } from './run.js';

export interface ObservedDelivery {
  channel: string;
  recipient: string;
  result: string;
  report: string;
}

export interface ObservedMessage {
  label: string;
  origin: 'injected' | 'forward' | 'bounce';
  parent?: string;
  via_delivery_to?: string;
  sender: string;
  deliveries: ObservedDelivery[];
  state: 'done' | 'still-queued';
  triple_bounce_discarded?: true;
}

const str = (v: string | number | undefined): string => (v === undefined ? '' : String(v));

/**
 * Labels follow the queue ids: injected messages by input order; a `forward` event names the child id of a
 * parent (`.fN` in event order), a `bounce` event the bounce id (`.bN`). Reports are normalised, then
 * logsafe-encoded as qmail-send's log would show them.
 */
export function collectMessages(
  injected: ReadonlyArray<QueueId | undefined>,
  events: readonly Event[],
  normalise: (text: string) => string,
): ObservedMessage[] {
  const msgs = new Map<string, ObservedMessage>();
  const children = new Map<string, number>();
  injected.forEach((id, i) => {
    if (id !== undefined)
      msgs.set(id, { label: `m${i + 1}`, origin: 'injected', sender: '', deliveries: [], state: 'still-queued' });
  });
  const child = (parentId: string, id: string, kind: 'f' | 'b', extra: Partial<ObservedMessage>): void => {
    const parent = msgs.get(parentId);
    if (parent === undefined) return;
    const key = `${parentId}.${kind}`;
    const n = (children.get(key) ?? 0) + 1;
    children.set(key, n);
    msgs.set(id, {
      label: `${parent.label}.${kind}${n}`,
      origin: kind === 'f' ? 'forward' : 'bounce',
      parent: parent.label,
      sender: '',
      deliveries: [],
      state: 'still-queued',
      ...extra,
    });
  };
  // Labels first (a child's own events may come before the event that names it).
  for (const e of events) {
    if (e.name === 'forward')
      child(str(e.fields['msg']), str(e.fields['id']), 'f', {
        via_delivery_to: logsafe(normalise(str(e.fields['via']))),
      });
    if (e.name === 'bounce') child(str(e.fields['msg']), str(e.fields['id']), 'b', {});
  }
  const results = new Map<string, { result: string; report: string }>();
  for (const e of events) {
    if (e.name === 'delivery')
      results.set(str(e.fields['delivery']), { result: str(e.fields['result']), report: str(e.fields['report']) });
  }
  const seen = new Set<string>();
  for (const e of events) {
    const m = msgs.get(str(e.fields['msg']));
    if (m === undefined) continue;
    if (e.name === 'info') {
      seen.add(str(e.fields['msg']));
      m.sender = logsafe(normalise(str(e.fields['from'])));
    } else if (e.name === 'start') {
      const r = results.get(str(e.fields['delivery']));
      m.deliveries.push({
        channel: str(e.fields['channel']),
        recipient: logsafe(normalise(str(e.fields['to']))),
        result: r?.result ?? 'unfinished',
        report: logsafe(normalise(r?.report ?? '')),
      });
    } else if (e.name === 'end') m.state = 'done';
    else if (e.name === 'triple_bounce') m.triple_bounce_discarded = true;
  }
  return [...msgs.entries()]
    .filter(([id]) => seen.has(id))
    .map(([, m]) => m)
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}
