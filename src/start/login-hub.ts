// The one failed-login table of a `quail start` (issue: one count across services): kept by root, asked and told by
// the SMTP, POP3, ODMR and web admin processes over their IPC channels (src/throttle's remote.ts).
import type { ChildProcess } from 'node:child_process';
import { serveThrottle, type LoginThrottle, type ThrottleReply } from '../throttle/index.js';

/** Root → a service child: the table's answer, news or everything it knows (RemoteThrottle.heard). */
export interface ThrottleMessage {
  readonly type: 'throttle';
  readonly body: ThrottleReply;
}

/**
 * Root's side. Every service that checks passwords joins with its running children; a child's request is answered
 * to it, and a failure or success is told to every other child of every joined service (so their copies know which
 * attempts to ask about). A child that starts (or starts again after a crash) is first told everything known.
 */
export class LoginHub {
  private readonly services = new Set<() => readonly ChildProcess[]>();

  constructor(readonly table: LoginThrottle) {}

  join(children: () => readonly ChildProcess[]): void {
    this.services.add(children);
  }

  /** A child of a joined service runs now: it learns every failure counted so far. */
  greet(child: ChildProcess): void {
    tell(child, { op: 'known', entries: this.table.known() });
  }

  /** A child's `throttle` message. */
  heard(from: ChildProcess, body: unknown): void {
    const { answer, news } = serveThrottle(this.table, body);
    if (answer) tell(from, answer);
    if (news) for (const children of this.services) for (const c of children()) if (c !== from) tell(c, news);
  }
}

function tell(child: ChildProcess, body: ThrottleReply): void {
  // with a callback a send to a child that just died is reported there, not as an 'error' event that would end root
  if (child.connected) child.send({ type: 'throttle', body } satisfies ThrottleMessage, () => undefined);
}
