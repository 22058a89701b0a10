// POP3 as root: the listeners are bound here for the whole run and served by a child as control/quailuser (privchild.ts).
import type { Pop3ListenerSpec } from '../pop3d/index.js';
import type { EventLog } from './log.js';
import type { BoundPop3 } from './pop3.js';
import { ServiceChild, type Account, type FromServiceChild } from './privchild.js';

/** The POP3 child's own message: a login it accepted (the parent records the last-login time). */
export interface Pop3Login {
  readonly type: 'login';
  readonly login: string;
  readonly at: string;
}

export type FromPop3Child = FromServiceChild<Pop3Login>;

export interface Pop3ChildOptions {
  readonly root: string;
  readonly specs: readonly Pop3ListenerSpec[];
  /** The specs are the embedded default: one that cannot be bound is skipped. */
  readonly embedded: boolean;
  readonly account: Account;
  readonly log: EventLog;
  /** A login the child accepted (the parent records the last-login time; the child's directory is read-only). */
  readonly onLogin: (login: string, at: Date) => Promise<void>;
  readonly onServing?: (pid: number) => void;
  readonly onCrash?: (crashes: number) => void;
}

const CHILD_SCRIPT = new URL('./pop3-child.js', import.meta.url);

/** The POP3 child: started, replaced when it dies (the ports stay open meanwhile), stopped with the supervisor. */
export class Pop3Child {
  private readonly service: ServiceChild<Pop3ListenerSpec, Pop3Login>;

  constructor(private readonly o: Pop3ChildOptions) {
    this.service = new ServiceChild<Pop3ListenerSpec, Pop3Login>({
      name: 'pop3d',
      what: 'POP3',
      script: CHILD_SCRIPT,
      root: o.root,
      account: o.account,
      log: o.log,
      specs: o.specs,
      optional: o.embedded,
      // Before TLS on an implicit-TLS port the client could not read a reply: it sees the connection close.
      busyReply: (spec) =>
        spec.implicitTls ? undefined : '-ERR [SYS/TEMP] service restarting, try again in a minute\r\n',
      onMessage: (m) => void this.o.onLogin(m.login, new Date(m.at)),
      ...(o.onServing ? { onServing: o.onServing } : {}),
      ...(o.onCrash ? { onCrash: o.onCrash } : {}),
    });
  }

  get pid(): number | undefined {
    return this.service.pid;
  }

  async start(): Promise<readonly BoundPop3[]> {
    const bound = await this.service.start();
    for (const b of bound) {
      this.o.log.event('pop3.listening', {
        address: b.host,
        port: b.port,
        tls: b.implicitTls ? 'implicit' : 'stls',
        user: this.o.account.name,
      });
    }
    return bound.map(({ host, port, implicitTls }) => ({ host, port, implicitTls }));
  }

  reload(): void {
    this.service.reload();
  }

  stop(graceMs: number): Promise<void> {
    return this.service.stop(graceMs);
  }
}
