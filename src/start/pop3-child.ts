// The unprivileged POP3 process: serves the connections its root parent accepts, reading the directory read-only.
import type { Pop3ListenerSpec } from '../pop3d/index.js';
import { rootThrottle, runServiceChild } from './child-common.js';
import { DirectoryAuthenticator, makePop3Servers } from './pop3.js';
import type { FromPop3Child } from './pop3.js';

const send = (m: FromPop3Child): void => {
  if (process.connected) process.send?.(m);
};

/**
 * Runs in the child; driven by the parent's messages (privchild.ts). It starts as root only to load its code
 * (wherever the program lives) and drops to the account before it touches a socket, a Maildir or the directory.
 */
export async function servePop3Child(root: string, uid: number, gid: number): Promise<void> {
  // The last-login time is written by the parent (the directory file is not writable by this account).
  let authenticator: DirectoryAuthenticator | undefined;
  const reloads: Array<() => void> = [];
  const throttle = rootThrottle(send); // root's one failed-login table (SMTP AUTH, POP3, ODMR, web)
  await runServiceChild<Pop3ListenerSpec>(
    {
      uid,
      gid,
      open: () => {
        authenticator = new DirectoryAuthenticator(root, true, (login, at) => {
          send({ type: 'login', login, at: at.toISOString() });
          return Promise.resolve();
        });
        return Promise.resolve();
      },
      listeners: (specs) => {
        const made = makePop3Servers(specs, {
          root,
          authenticator: authenticator as DirectoryAuthenticator,
          throttle,
          log: (event, fields) => send({ type: 'log', event, fields: { ...fields } }),
        });
        reloads.push(made.setTls);
        return made.servers;
      },
      reload: () => reloads.forEach((r) => r()),
      close: async () => {
        await authenticator?.close();
      },
    },
    send,
  );
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined)
  void servePop3Child(root, Number(uid), Number(gid));
