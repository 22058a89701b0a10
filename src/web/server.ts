// The web admin's HTTP(S) server: node:http (or node:https with control/servercert.pem) running the hono app, for
// connections it accepts itself or that the root parent hands over unread.
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';

export interface WebServerOptions {
  /** PEM key and certificate (servercert.pem): HTTPS. */
  readonly tls?: { readonly key: string; readonly cert: string } | undefined;
}

/** Requests one connection may have unanswered (pipelined) before it is closed. */
export const MAX_IN_FLIGHT = 16;

/**
 * Node's HTTP parser (llhttp) reads the requests: headers over 16 KiB are a 431, a malformed request a 400, and a
 * request has 10 s for its headers and 30 s in all; an idle keep-alive connection is closed after 5 s. A connection
 * with more than MAX_IN_FLIGHT requests unanswered is closed.
 */
export function webServer(app: Hono, o: WebServerOptions = {}): Server {
  const listener = getRequestListener(app.fetch);
  // the deadlines are checked every second (node's default, 30 s, let a slowloris client hold a connection 40 s)
  const opts = {
    requestTimeout: 30_000,
    headersTimeout: 10_000,
    maxHeaderSize: 16 * 1024,
    connectionsCheckingInterval: 1000,
  };
  const inFlight = new WeakMap<Socket, number>();
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    // node's parser reads pipelined requests as fast as they come while the app (async) has written nothing, so
    // node's own back-pressure (it pauses on unsent response data) never starts: a client that pipelines and never
    // reads would have every request rendered and held. No browser pipelines; past MAX_IN_FLIGHT the connection ends.
    const socket = req.socket;
    const n = (inFlight.get(socket) ?? 0) + 1;
    inFlight.set(socket, n);
    if (n > MAX_IN_FLIGHT) {
      socket.destroy();
      return;
    }
    res.once('close', () => inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1));
    void listener(req, res);
  };
  const srv = o.tls ? createHttps({ ...opts, key: o.tls.key, cert: o.tls.cert }, serve) : createHttp(opts, serve);
  srv.keepAliveTimeout = 5000;
  // a TLS handshake that fails (not TLS, a bad client) must not end the process
  srv.on('tlsClientError', (_err, socket: Socket) => socket.destroy());
  srv.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
    const status =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  return srv;
}

/** Servers that take connections accepted elsewhere and have their connection tracking started. */
const tracked = new WeakSet<Server>();

/** Serve a connection accepted elsewhere (the root parent hands it over unread). */
export function adoptConnection(srv: Server, socket: Socket): void {
  // node's http.Server starts tracking its connections (the list behind headersTimeout, requestTimeout and
  // closeAllConnections) on its 'listening' event, which a server that never listens itself never gets: without it a
  // slowloris client trickling header lines was never cut off, and a stop could not cut the open connections.
  if (!srv.listening && !tracked.has(srv)) {
    tracked.add(srv);
    srv.emit('listening');
  }
  socket.on('error', () => undefined);
  srv.emit('connection', socket);
  socket.resume();
}

/** Stop: no new requests; open connections get graceMs, then are cut. */
export function closeServer(srv: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => srv.closeAllConnections(), graceMs);
    cut.unref();
    srv.close(() => {
      clearTimeout(cut);
      resolve();
    });
    srv.closeIdleConnections();
  });
}
