// The unprivileged POP3 process: serves the listeners its root parent bound, reading the directory read-only.
import type { Server, Socket } from 'node:net';
import type { Pop3Server } from '../pop3d/index.js';
import { becomeAccount, errText, onLifecycleSignals } from './child-common.js';
import { closeServers, DirectoryAuthenticator, makePop3Servers } from './pop3.js';
import type { FromPop3Child, ToPop3Child } from './pop3-privsep.js';

const send = (m: FromPop3Child): void => {
  if (process.connected) process.send?.(m);
};

/**
 * Runs in the child; driven by the parent's messages (pop3-privsep.ts). It starts as root only to load its code
 * (wherever the program lives) and drops to the account before it touches a socket, a Maildir or the directory.
 */
export function servePop3Child(root: string, uid: number, gid: number): void {
  if (!becomeAccount(uid, gid, (error) => send({ type: 'fatal', error }))) return;
  // The last-login time is written by the parent (the directory file is not writable by this account).
  const authenticator = new DirectoryAuthenticator(root, true, (login, at) => {
    send({ type: 'login', login, at: at.toISOString() });
    return Promise.resolve();
  });
  const servers = new Map<number, Pop3Server>();
  const reloads: Array<() => void> = [];
  let stopping: Promise<void> | undefined;
  const stop = (graceMs: number): Promise<void> => {
    stopping ??= (async () => {
      await closeServers([...servers.values()], graceMs);
      await authenticator.close();
      process.disconnect?.();
      process.exit(0);
    })();
    return stopping;
  };
  process.on('message', (m: ToPop3Child, handle: Server | Socket | undefined) => {
    switch (m.type) {
      case 'listen': {
        try {
          const made = makePop3Servers([m.spec], { root, authenticator, log: (event, fields) => send({ type: 'log', event, fields: { ...fields } }) });
          const server = made.servers[0] as Pop3Server;
          servers.set(m.index, server);
          reloads.push(made.setTls);
          server.listenOn(handle as Server).then(
            () => send({ type: 'listening', index: m.index }),
            (err: unknown) => send({ type: 'fatal', error: `cannot serve ${m.spec.host}:${m.spec.port}: ${errText(err)}` }),
          );
        } catch (err) {
          send({ type: 'fatal', error: `cannot serve POP3 on ${m.spec.host}:${m.spec.port} as uid ${process.getuid?.() ?? '?'}: ${errText(err)}` });
        }
        break;
      }
      case 'adopt':
        if (handle) servers.get(m.index)?.adopt(handle as Socket);
        break;
      case 'reload':
        for (const r of reloads) r();
        break;
      case 'stop':
        void stop(m.graceMs);
        break;
    }
  });
  onLifecycleSignals(stop, () => reloads.forEach((r) => r()));
  send({ type: 'ready' });
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined) servePop3Child(root, Number(uid), Number(gid));
