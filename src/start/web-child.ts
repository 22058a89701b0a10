// The unprivileged web admin process: parses HTTP and renders pages as control/quailuser; it opens no directory and
// no Maildir — every read and change is a typed request to its root parent (web-service.ts), which decides.
import { randomInt } from 'node:crypto';
import type { WebAnswer, WebRequest } from '../access/index.js';
import { adoptConnection, closeServer } from '../web/index.js';
import { rootThrottle, runServiceChild } from './child-common.js';
import { makeWebServers, type FromWebChild, type WebReply, type WebSpec } from './web-service.js';

const send = (m: FromWebChild): void => {
  if (process.connected) process.send?.(m);
};

/** A request root does not answer within this time is a 503. */
const ASK_MS = 30_000;

export async function serveWebChild(root: string, uid: number, gid: number): Promise<void> {
  const waiting = new Map<number, (m: WebReply | undefined) => void>();
  // Root answers whichever child runs now: ids of a replaced child's last requests must not be this one's.
  let next = randomInt(1, 2 ** 47);
  process.on('message', (m: { type?: unknown; id?: unknown }) => {
    if (m.type !== 'answer' || typeof m.id !== 'number') return;
    waiting.get(m.id)?.(m as WebReply);
  });
  const throttle = rootThrottle(send); // root's one failed-login table (SMTP AUTH, POP3, ODMR, web)
  const ask = (req: WebRequest): Promise<WebAnswer> =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => done(undefined), ASK_MS);
      const done = (m: WebReply | undefined): void => {
        clearTimeout(timer);
        waiting.delete(id);
        if (m?.answer) resolve(m.answer);
        else reject(new Error(m?.trouble ?? 'no answer from the parent'));
      };
      waiting.set(id, done);
      send({ type: 'ask', id, req });
    });
  await runServiceChild<WebSpec>(
    {
      uid,
      gid,
      open: () => Promise.resolve(),
      listeners: (specs) =>
        makeWebServers(specs, root, ask, (event, fields) => send({ type: 'log', event, fields }), throttle).map(
          (srv, i) => ({
            adopt: (s) => adoptConnection(srv, s),
            close: (g) => closeServer(srv, g),
            // over TLS the answer's bytes do not pass through socket.write: the parent lets go at once (web-service.ts)
            http: specs[i]?.tls !== true,
          }),
        ),
      reload: () => undefined,
      close: () => Promise.resolve(),
    },
    send,
  );
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined)
  void serveWebChild(root, Number(uid), Number(gid));
