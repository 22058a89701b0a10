// A listening socket bound by one process (root) and accepted on by another (the unprivileged service child), while
// the binder keeps its own descriptor without accepting: qmail's tcpserver runs as root and so does its accept; here
// the accept is the child's, and root's descriptor keeps the port (and its queue of waiting connections) through a
// child's death.
import * as net from 'node:net';
import { getSystemErrorName } from 'node:util';

/**
 * A bound TCP socket (Node's own handle object) that this process never listens or accepts on: the child it is sent
 * to listens on it (`server.listen(handle)`, which Node accepts for such a handle). Opaque here on purpose.
 */
export interface SharedListen {
  readonly port: number;
  /** What child.send takes as the handle (Node sends such a handle as is: `net.Native`). */
  readonly handle: object;
  close(): void;
}

interface RawTcp {
  getsockname(out: { port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number) => RawTcp | number;

/**
 * Node's net module binds a server's socket with `_createServerHandle` (cluster's primary does exactly this: binds,
 * never listens, and sends the handle to the workers that accept). It is not public API, so it is looked up, checked,
 * and without it the caller keeps accepting in root and handing each connection over.
 */
function creator(): CreateServerHandle | undefined {
  const f = (net as unknown as { readonly _createServerHandle?: unknown })._createServerHandle;
  return typeof f === 'function' ? (f as CreateServerHandle) : undefined;
}

/** Whether this Node can bind a socket for another process to accept on. */
export function canShareListen(): boolean {
  return creator() !== undefined;
}

/**
 * Binds host:port (0: any free port) without listening. Nothing connects until the process it is sent to listens; from
 * then on the socket listens, in the kernel, for as long as any process holds it: connections made while no child runs
 * wait in its queue for the next one. Throws the system error (EADDRINUSE, EACCES...) as `listen` would.
 */
export function bindShared(host: string, port: number): SharedListen {
  const create = creator();
  if (create === undefined) throw new Error('this Node.js cannot bind a socket for another process');
  const raw = create(host, port, net.isIPv6(host) ? 6 : 4);
  const fail = (code: number): Error =>
    Object.assign(new Error(`bind ${getSystemErrorName(code)} ${host}:${port}`), { code: getSystemErrorName(code) });
  if (typeof raw === 'number') throw fail(raw);
  const out: { port?: number } = {};
  // libuv reports a port in use when the socket is first asked about (it delays bind's EADDRINUSE to listen)
  const err = raw.getsockname(out);
  if (err !== 0 || out.port === undefined) {
    raw.close();
    throw fail(err !== 0 ? err : -22);
  }
  return { port: out.port, handle: raw, close: () => raw.close() };
}
