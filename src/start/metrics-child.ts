// The unprivileged metrics process: serves the HTTP connections its root parent accepts; the text comes from root.
import { runServiceChild } from './child-common.js';
import { adoptConnection, closeServer, metricsServer } from './metrics-http.js';
import type { FromMetricsChild, MetricsSpec, MetricsText } from './metrics-service.js';

const send = (m: FromMetricsChild): void => {
  if (process.connected) process.send?.(m);
};

/** A scrape root does not answer within this time is a 503. */
const ASK_MS = 10_000;

/** Runs in the child (privchild.ts drives it); it opens nothing but its HTTP servers. */
export async function serveMetricsChild(uid: number, gid: number): Promise<void> {
  const waiting = new Map<number, (m: MetricsText | undefined) => void>();
  let next = 1;
  process.on('message', (m: { type?: unknown; id?: unknown }) => {
    if (m.type !== 'metrics' || typeof m.id !== 'number') return;
    waiting.get(m.id)?.(m as MetricsText);
  });
  const scrape = (): Promise<{ contentType: string; text: string }> =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => done(undefined), ASK_MS);
      const done = (m: MetricsText | undefined): void => {
        clearTimeout(timer);
        waiting.delete(id);
        if (m && m.contentType !== '') resolve({ contentType: m.contentType, text: m.text });
        else reject(new Error('no answer from the parent'));
      };
      waiting.set(id, done);
      send({ type: 'scrape', id });
    });
  await runServiceChild<MetricsSpec>(
    {
      uid,
      gid,
      open: () => Promise.resolve(),
      listeners: (specs) =>
        specs.map(() => {
          const srv = metricsServer(scrape);
          return { adopt: (s) => adoptConnection(srv, s), close: (g) => closeServer(srv, g), http: true };
        }),
      reload: () => undefined,
      close: () => Promise.resolve(),
    },
    send,
  );
}

const [root, uid, gid] = process.argv.slice(2);
if (root !== undefined && uid !== undefined && gid !== undefined && process.send !== undefined)
  void serveMetricsChild(Number(uid), Number(gid));
