// The web admin in `quail start`: the `admin` kind of the services table, served in this process or the webd child;
// every read and change is answered by src/access's serveWeb where the directory may be written (root, as root).
import type { Socket } from 'node:net';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { serveWeb, type WebAnswer, type WebRequest } from '../access/index.js';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { KeptDirectory, openDirectory } from '../directory/index.js';
import { DescriptorGuard } from '../tcpserver/index.js';
import type { LoginAttempts } from '../throttle/index.js';
import { closeServer, createWebApp, webServer, type Backend, type WebLog } from '../web/index.js';
import { keyValues, type HostPort } from './listeners.js';
import type { EventLog } from './log.js';
import type { FromServiceChild } from './privchild.js';
import type { ServiceDef } from './services.js';
import { webRoutes } from './web-routes.js';

/** An `admin` line: `127.0.0.1:8080 admin`, `0.0.0.0:8443 admin tls=implicit`, `127.0.0.1:8080 admin proxy=yes`. */
export interface WebSpec extends HostPort {
  /** HTTPS with control/servercert.pem. */
  readonly tls: boolean;
  /** Behind a reverse proxy that terminates TLS: Secure cookies, the client's address from X-Forwarded-For. */
  readonly proxy: boolean;
}

/** webd → root: one request of the web admin (src/access WebRequest, checked there field by field). */
export interface WebAsk {
  readonly type: 'ask';
  readonly id: number;
  readonly req: unknown;
}
/** root → webd: the answer to `id`, or trouble (the directory unreachable: the page says try again). */
export interface WebReply {
  readonly type: 'answer';
  readonly id: number;
  readonly answer?: WebAnswer;
  readonly trouble?: string;
}
export type FromWebChild = FromServiceChild<WebAsk>;

/** Requests root works on at once for the web process; more are answered as trouble (503) at once. */
const MAX_IN_FLIGHT = 64;

export function parseWebSpec(where: HostPort, words: readonly string[]): WebSpec | string {
  const o = keyValues(words);
  if (typeof o === 'string') return o;
  const { tls, proxy, ...rest } = o;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) return `unknown option "${extra}" (tls=implicit, proxy=yes)`;
  if (tls !== undefined && tls !== 'implicit') return `tls=${tls}: only tls=implicit (HTTPS with servercert.pem)`;
  if (proxy !== undefined && proxy !== 'yes' && proxy !== 'no') return `proxy=${proxy}: yes or no`;
  if (tls === 'implicit' && proxy === 'yes') return 'tls=implicit and proxy=yes: choose one (who terminates TLS?)';
  return { host: where.host, port: where.port, tls: tls === 'implicit', proxy: proxy === 'yes' };
}

/** servercert.pem as key and certificate, or undefined. */
function webTls(control: Control): { key: string; cert: string } | undefined {
  const pem = control.raw('servercert.pem');
  return pem === null || !pem.includes('PRIVATE KEY') ? undefined : { key: pem, cert: pem };
}

/** The client's address: the socket's; behind the proxy, the last X-Forwarded-For entry (the one the proxy added). */
function clientIp(spec: WebSpec): (c: Context) => string {
  return (c) => {
    const socket = getConnInfo(c).remote.address ?? '';
    if (!spec.proxy) return socket;
    const last = (c.req.header('x-forwarded-for') ?? '').split(',').at(-1)?.trim() ?? '';
    return last === '' ? socket : last;
  };
}

/**
 * The HTTP servers for the specs; one failed-login table for all of them and for the other services (quail start's:
 * root's as a child, ctx.logins in one process).
 */
export function makeWebServers(
  specs: readonly WebSpec[],
  root: string,
  backend: Backend,
  log: WebLog,
  throttle: LoginAttempts,
): ReturnType<typeof webServer>[] {
  const control = new Control(root);
  return specs.map((spec) => {
    const tls = spec.tls ? webTls(control) : undefined;
    if (spec.tls && !tls) throw new Error(`${spec.host}:${spec.port} admin tls=implicit needs control/servercert.pem`);
    const app = createWebApp({
      backend,
      secure: spec.tls || spec.proxy,
      throttle,
      clientIp: clientIp(spec),
      log,
      routes: webRoutes(root),
    });
    const srv = webServer(app, { tls });
    // out of descriptors, as every listener (src/tcpserver): a connection accepted close to the limit is closed, and
    // a failed accept (EMFILE) is reported once a minute instead of ending the process as an unhandled 'error'
    const listener = `${spec.host}:${spec.port}`;
    const descriptors = new DescriptorGuard((text) => log('web.error', { listener, error: `accept failed: ${text}` }));
    srv.on('connection', (socket: Socket) => descriptors.admit(socket));
    srv.on('error', (err) => {
      if (!descriptors.acceptError(err) && srv.listening) log('web.error', { listener, error: errText(err) });
    });
    return srv;
  });
}

/** The read-write directory the answers need, opened at the first request (kept open; reopened after trouble). */
class WebAnswerer {
  private readonly dir: KeptDirectory;
  private inFlight = 0;

  constructor(
    private readonly root: string,
    private readonly log: EventLog,
  ) {
    this.dir = new KeptDirectory(() => openDirectory({ root }));
  }

  /** The request answered, or thrown (temporary) trouble. */
  async answer(req: unknown): Promise<WebAnswer> {
    if (this.inFlight >= MAX_IN_FLIGHT) throw new Error('too many web requests at once');
    this.inFlight++;
    try {
      return await serveWeb({ root: this.root, dir: await this.dir.get() }, req);
    } catch (err) {
      this.log.event('web.error', { error: errText(err) });
      await this.dir.drop();
      throw err;
    } finally {
      this.inFlight--;
    }
  }

  close(): Promise<void> {
    return this.dir.close();
  }
}

export const WEB_SERVICE: ServiceDef<WebSpec, WebAsk> = {
  name: 'webd',
  what: 'web admin',
  kinds: [
    {
      kind: 'admin',
      port: 8080,
      about: 'the web admin for domain administrators and users (HTTP; HTTPS with tls=implicit; proxy=yes behind one)',
      parse: parseWebSpec,
    },
  ],
  kindOf: () => 'admin',
  script: new URL('./web-child.js', import.meta.url),
  optionalInDefault: false,
  checksPasswords: true,
  needsCert: { test: (spec) => spec.tls, warning: 'web.error' },
  busyReply: (spec) =>
    spec.tls
      ? undefined
      : 'HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n',
  // over TLS the child's first bytes bypass socket.write (and root cannot answer inside TLS): let go at once there
  clientSpeaksFirst: { test: (spec) => !spec.tls, event: 'webd.lost' },
  events: { listening: 'web.listening', error: 'web.error' },
  listeningFields: (spec) => ({ address: spec.host, port: spec.port, tls: spec.tls, proxy: spec.proxy }),
  local(specs, ctx) {
    const answerer = new WebAnswerer(ctx.root, ctx.log);
    const servers = makeWebServers(
      specs,
      ctx.root,
      (req: WebRequest) => answerer.answer(req),
      (e, f) => ctx.log.event(e, f),
      ctx.logins.table,
    );
    return Promise.resolve({
      listeners: servers.map((s, i) => {
        const spec = specs[i] as WebSpec;
        return {
          listen: () =>
            new Promise((resolve, reject) => {
              s.once('error', reject);
              s.listen(spec.port, spec.host, () => {
                s.off('error', reject);
                const a = s.address();
                if (a === null || typeof a === 'string') reject(new Error('no address'));
                else resolve(a);
              });
            }),
          close: (g: number) => closeServer(s, g),
        };
      }),
      reload: () => undefined,
      close: () => answerer.close(),
    });
  },
  parent(ctx, post) {
    const answerer = new WebAnswerer(ctx.root, ctx.log);
    return {
      onMessage: (m) => {
        if (m.type !== 'ask' || !Number.isSafeInteger(m.id)) return;
        answerer.answer(m.req).then(
          (answer) => post({ type: 'answer', id: m.id, answer } satisfies WebReply),
          (err: unknown) => post({ type: 'answer', id: m.id, trouble: errText(err) } satisfies WebReply),
        );
      },
      close: () => answerer.close(),
    };
  },
};
