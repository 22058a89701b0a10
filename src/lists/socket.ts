// run/lists.sock: list programs running as a domain's account ask the supervisor (which may write the directory).
import { createConnection, createServer, type Server } from 'node:net';
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { parseWriteRequest, type ListWriter, type WriteAnswer, type WriteRequest } from './writer.js';

/** The socket's place in the mail root. */
export const listSocketPath = (root: string): string => join(root, 'run', 'lists.sock');

/** One request per connection: a JSON line of at most this many bytes. */
const MAX_REQUEST = 4096;
const TIMEOUT_MS = 30_000;

export interface ListSocketServer {
  close(): Promise<void>;
}

/**
 * Serves `writer` on `path`, mode 0660, group `gid` (control/quailuser's: the domains' delivery account). Each
 * connection sends one JSON request line and gets one JSON answer line; anything else gets a refusal and is closed.
 */
export async function serveListSocket(
  path: string,
  writer: ListWriter,
  gid: number | null,
  onAnswer?: (req: WriteRequest, a: WriteAnswer) => void,
): Promise<ListSocketServer> {
  rmSync(path, { force: true });
  const server: Server = createServer((sock) => {
    let buf = '';
    let done = false;
    sock.setEncoding('latin1');
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy());
    sock.on('error', () => undefined);
    const answer = (a: WriteAnswer): void => {
      done = true;
      sock.end(`${JSON.stringify(a)}\n`);
    };
    sock.on('data', (chunk: string) => {
      if (done) return;
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_REQUEST) answer({ ok: false, permanent: true, text: 'request too long' });
        return;
      }
      let req: WriteRequest | null = null;
      try {
        req = parseWriteRequest(JSON.parse(buf.slice(0, nl)) as unknown);
      } catch {
        req = null;
      }
      if (req === null) {
        answer({ ok: false, permanent: true, text: 'not a list request' });
        return;
      }
      const r = req;
      done = true;
      writer.apply(r).then(
        (a) => {
          onAnswer?.(r, a);
          sock.end(`${JSON.stringify(a)}\n`);
        },
        (err: unknown) => sock.end(`${JSON.stringify({ ok: false, permanent: false, text: errText(err) })}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  if (gid !== null) chownSync(path, 0, gid);
  chmodSync(path, gid !== null ? 0o660 : 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        rmSync(path, { force: true });
      }),
  };
}

/** The program side: each request over a fresh connection; trouble reaching the supervisor is temporary. */
export function socketWriter(path: string): ListWriter {
  return {
    apply: (req) =>
      new Promise<WriteAnswer>((resolve) => {
        const sock = createConnection(path);
        let buf = '';
        sock.setEncoding('latin1');
        sock.setTimeout(TIMEOUT_MS, () => sock.destroy(new Error('no answer within 30 s')));
        sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
        sock.on('data', (c: string) => (buf += c));
        sock.on('error', (err) =>
          resolve({
            ok: false,
            permanent: false,
            text: `cannot reach quail's list writer at ${path}: ${errText(err)}`,
          }),
        );
        sock.on('close', () => {
          try {
            resolve(JSON.parse(buf) as WriteAnswer);
          } catch {
            resolve({ ok: false, permanent: false, text: `no answer from quail's list writer at ${path}` });
          }
        });
      }),
    close: () => Promise.resolve(),
  };
}
