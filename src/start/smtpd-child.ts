// The unprivileged SMTP process: serves the listeners its root parent bound and injects into the queue.
import type { Server, Socket } from 'node:net';
import { Control } from '../control/index.js';
import { openQueue, type FileQueue } from '../queue/index.js';
import { loadTlsContext, SmtpListener } from '../smtpd/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { becomeAccount, errText, onLifecycleSignals } from './child-common.js';
import { DirectoryLink } from './directory-link.js';
import type { FromChild, ToChild } from './privsep.js';

const send = (m: FromChild): void => {
  if (process.connected) process.send?.(m);
};
const log = (event: string, fields: Readonly<Record<string, unknown>>): void => send({ type: 'log', event, fields: { ...fields } });

function tlsOrNone(root: string): ReturnType<typeof loadTlsContext> {
  try {
    return loadTlsContext(new Control(root));
  } catch (err) {
    log('smtp.error', { error: `control/servercert.pem unusable, STARTTLS off: ${errText(err)}` });
    return undefined;
  }
}

/** Runs in the child: everything the process does is driven by the parent's messages (privsep.ts). */
export async function serveChild(root: string, uid: number, gid: number): Promise<void> {
  if (!becomeAccount(uid, gid, (error) => send({ type: 'fatal', error }))) return;
  let queue: FileQueue;
  try {
    queue = await openQueue(root);
  } catch (err) {
    send({ type: 'fatal', error: `cannot open the queue of ${root} as uid ${process.getuid?.() ?? '?'}: ${errText(err)}; that account must be able to reach the mail root (mode 755 on it and the directories above) and own queue/ (quail init does that)` });
    process.exitCode = 100;
    process.disconnect?.();
    return;
  }
  let tls = tlsOrNone(root);
  // AUTH and RCPT checks read the directory as this (unprivileged) account: its SQLite file is root:quailgroup 0640.
  const directory = new DirectoryLink(root);
  // one failed-AUTH table for every SMTP listener: a client does not get twice the guesses on a second port
  const authThrottle = new LoginThrottle();
  const listeners = new Map<number, SmtpListener>();
  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number): Promise<void> => {
    stopping ??= (async () => {
      await Promise.all([...listeners.values()].map((l) => l.close(graceMs)));
      queue.close();
      await directory.close();
      process.disconnect?.();
      process.exit(0);
    })();
    return stopping;
  };
  process.on('message', (m: ToChild, handle: Server | Socket | undefined) => {
    switch (m.type) {
      case 'listen': {
        const l = new SmtpListener(m.spec, {
          controlFor: () => new Control(root),
          queue,
          authenticator: directory,
          authThrottle,
          recipients: directory,
          senders: directory,
          tls: () => tls,
          log,
        });
        listeners.set(m.index, l);
        l.listen(handle as Server).then(
          () => send({ type: 'listening', index: m.index }),
          (err: unknown) => send({ type: 'fatal', error: `cannot serve ${m.spec.host}:${m.spec.port}: ${errText(err)}` }),
        );
        break;
      }
      case 'adopt':
        if (handle) listeners.get(m.index)?.adopt(handle as Socket);
        break;
      case 'reload':
        tls = tlsOrNone(root);
        break;
      case 'stop':
        void stop(m.graceMs);
        break;
    }
  });
  onLifecycleSignals(stop, () => {
    tls = tlsOrNone(root);
  });
  send({ type: 'ready', uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 });
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined) void serveChild(root, Number(uid), Number(gid));
