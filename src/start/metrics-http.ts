// The metrics listener: a minimal HTTP/1.1 server answering GET /metrics with Prometheus' text format.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** The exposition, however it is obtained (this process's registry, or the root parent over IPC). */
export type Scrape = () => Promise<{ readonly contentType: string; readonly text: string }>;

/**
 * GET (or HEAD) /metrics → 200 and the text; / → a pointer to /metrics; other paths 404, other methods 405.
 * Requests have 10 s for their headers and body; a scrape that fails is a 503 (the scraper records it as down).
 */
export function metricsServer(scrape: Scrape): Server {
  const srv = createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET /metrics\n');
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('quail: the metrics are at /metrics\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    scrape().then(
      (m) => res.writeHead(200, { 'content-type': m.contentType }).end(req.method === 'HEAD' ? undefined : m.text),
      () => res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable, try again\n'),
    );
  });
  srv.keepAliveTimeout = 5000;
  return srv;
}

/** Serve a connection accepted elsewhere (the root parent hands it over unread). */
export function adoptConnection(srv: Server, socket: Socket): void {
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
