// The unprivileged ODMR process: serves the connections its root parent accepts, pushes held mail over them.
import { errText } from '../core/index.js';
import { openQueue, type FileQueue } from '../queue/index.js';
import { rootThrottle, runServiceChild } from './child-common.js';
import type { FromServiceChild } from './privchild.js';
import { OdmrServer, type OdmrSpec } from './odmr.js';

const send = (m: FromServiceChild<never>): void => {
  if (process.connected) process.send?.(m);
};

/** Drops to the account before it touches a socket, a held Maildir, the queue or the directory. */
export async function serveOdmrChild(root: string, uid: number, gid: number): Promise<void> {
  let queue: FileQueue | undefined;
  let server: OdmrServer | undefined;
  await runServiceChild<OdmrSpec>(
    {
      uid,
      gid,
      open: async () => {
        try {
          queue = await openQueue(root); // bounces of refused held mail: the scheduler is woken by the inject
        } catch (err) {
          throw new Error(`cannot open the queue of ${root} as uid ${process.getuid?.() ?? '?'}: ${errText(err)}`);
        }
        server = new OdmrServer({
          root,
          throttle: rootThrottle(send), // root's one failed-login table (SMTP AUTH, POP3, ODMR, web)
          inject: async (m) => String(await (queue as FileQueue).inject(m)),
          log: (event, fields) => send({ type: 'log', event, fields: { ...fields } }),
        });
      },
      // one link for every odmr listener, each with its own connection limits (root hands every connection over)
      listeners: (specs) =>
        specs.map((spec) => {
          const l = (server as OdmrServer).listener(spec);
          return { adopt: (s) => l.adopt(s), greets: true, close: (g) => l.close(g) };
        }),
      reload: () => undefined,
      close: async () => {
        await server?.closeLink();
        queue?.close();
      },
    },
    send,
  );
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined)
  void serveOdmrChild(root, Number(uid), Number(gid));
