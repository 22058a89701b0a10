// Privilege separation for SMTP: root binds and keeps the listeners, an unprivileged child serves them (privchild.ts).
import type { ListenerKind, ListenerSpec } from '../smtpd/index.js';
import type { EventLog } from './log.js';
import { ServiceChild, type Account, type FromServiceChild } from './privchild.js';

export type { Account } from './privchild.js';

/** The SMTP child's messages: the lifecycle ones only (a queued message travels as the `smtp.queued` log event). */
export type FromSmtpChild = FromServiceChild<never>;

export interface BoundListener {
  readonly host: string;
  readonly port: number;
  readonly kind: ListenerKind;
}

export interface SmtpChildOptions {
  readonly root: string;
  readonly specs: readonly ListenerSpec[];
  readonly account: Account;
  readonly log: EventLog;
  /** A message was queued by the child (the parent wakes its scheduler). */
  readonly onQueued: () => void;
  /** A (re)started child serves the listeners: its pid, for quail.json. */
  readonly onServing: (pid: number) => void;
  /** The child died unexpectedly: how many times so far (quail.json, quail status). */
  readonly onCrash?: (crashes: number) => void;
  /** The script run as the child (default: smtpd-child.js beside this file). */
  readonly script?: string;
}

const CHILD_SCRIPT = new URL('./smtpd-child.js', import.meta.url);

/** The SMTP listeners: bound here as root for the whole run, served by a child running as control/quailuser. */
export class SmtpChild {
  private readonly service: ServiceChild<ListenerSpec, never>;

  constructor(o: SmtpChildOptions) {
    const log: EventLog = {
      event: (name, fields, level) => {
        o.log.event(name, fields, level);
        if (name === 'smtp.queued') o.onQueued();
      },
    };
    this.service = new ServiceChild<ListenerSpec, never>({
      name: 'smtpd',
      what: 'SMTP',
      script: o.script ?? CHILD_SCRIPT,
      root: o.root,
      account: o.account,
      log,
      specs: o.specs,
      busyReply: () => '421 4.3.2 service restarting, try again in a minute\r\n',
      onServing: o.onServing,
      ...(o.onCrash ? { onCrash: o.onCrash } : {}),
    });
  }

  get listeners(): readonly BoundListener[] {
    return this.service.listeners.map((s) => ({ host: s.host, port: s.port, kind: s.kind }));
  }

  get pid(): number | undefined {
    return this.service.pid;
  }

  get crashes(): number {
    return this.service.crashes;
  }

  /** First start: any failure is thrown (the caller refuses to start). */
  async start(): Promise<readonly BoundListener[]> {
    await this.service.start();
    return this.listeners;
  }

  /** SIGHUP: the child re-reads servercert.pem (sessions read their control files per connection anyway). */
  reload(): void {
    this.service.reload();
  }

  /** SIGTERM: the ports close, the child lets sessions finish for graceMs and exits; killed if it takes longer. */
  stop(graceMs: number): Promise<void> {
    return this.service.stop(graceMs);
  }
}
