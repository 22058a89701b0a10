// ODMR in `quail start`: the `odmr` kind of the services table (RFC 2645, port 366), served here or in the odmrd child.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { authenticate, KeptDirectory, openDirectory, throttleLogin } from '../directory/index.js';
import { findHeld, listHeld, pushTurn, serveOdmr, socketConnector, waiting, type OdmrDeps } from '../held/index.js';
import type { NewMessage } from '../queue/index.js';
import { TcpServer } from '../tcpserver/index.js';
import { LoginThrottle, type LoginAttempts } from '../throttle/index.js';
import { keyValues, type HostPort } from './listeners.js';
import type { ServiceDef } from './services.js';

/** An `odmr` line: `0.0.0.0:366 odmr [maxconn=N] [maxperip=N] [idle=SECONDS]`. */
export interface OdmrSpec extends HostPort {
  /** `maxconn=N`: sessions at once on this listener (default 50). */
  readonly maxConnections: number;
  /** `maxperip=N`: sessions at once from one client address (default 5). */
  readonly maxPerIp: number;
  /** `idle=SECONDS`: the idle time of a session; default control/timeoutsmtpd, at most IDLE_CAP_S. */
  readonly idleSeconds?: number;
}

const MAXCONN = 50;
const MAXPERIP = 5;
/**
 * The default idle time is control/timeoutsmtpd (qmail-smtpd's, 1200 s unless set) but at most this: a customer's
 * ODMR client says its four commands at once, and each idle session holds one of the listener's few slots.
 */
const IDLE_CAP_S = 120;

/** The option words after `odmr` → the spec, or what is wrong. */
function odmrListenerOptions(where: HostPort, words: readonly string[]): OdmrSpec | string {
  const o = keyValues(words);
  if (typeof o === 'string') return o;
  const spec: { -readonly [K in keyof OdmrSpec]: OdmrSpec[K] } = {
    host: where.host,
    port: where.port,
    maxConnections: MAXCONN,
    maxPerIp: MAXPERIP,
  };
  for (const [key, value] of Object.entries(o)) {
    const n = /^\d{1,7}$/.test(value) ? Number(value) : 0;
    if (key === 'maxconn' && n > 0) spec.maxConnections = n;
    else if (key === 'maxperip' && n > 0) spec.maxPerIp = n;
    else if (key === 'idle' && n > 0) spec.idleSeconds = n;
    else return `option "${key}=${value}" is not one of maxconn=N, maxperip=N, idle=SECONDS (N above 0)`;
  }
  return spec;
}

const loopback = (ip: string): boolean => /^(127\.|::1$|::ffff:127\.)/.test(ip);

export interface OdmrWorld {
  readonly root: string;
  /** The failed-login table (quail start's one for every service; default: a new one for these listeners). */
  readonly throttle?: LoginAttempts;
  readonly inject: (m: NewMessage) => Promise<string>;
  readonly log: (
    event: 'odmr.session' | 'odmr.atrn' | 'odmr.auth' | 'odmr.refused' | 'odmr.error' | 'held.error',
    fields: Readonly<Record<string, unknown>>,
  ) => void;
}

/**
 * The session's dependencies over quail's files: the directory (read-only) for PLAIN/LOGIN, the held homes' HELD
 * (`atrn LOGIN`) and ATRNSECRET for which login owns which domains and CRAM-MD5, src/held's pushTurn for the push.
 */
class OdmrLink {
  private readonly dir: KeptDirectory;
  /** Failed logins of every odmr listener of this process (as POP3's ports share one). */
  private readonly throttle: LoginAttempts;
  /** servercert.pem as last read, and its context (made again only when the file changed). */
  private cert: { readonly pem: string; readonly context: SecureContext | undefined } | undefined;

  constructor(private readonly w: OdmrWorld) {
    this.dir = new KeptDirectory(() => openDirectory({ root: w.root, readonly: true }));
    this.throttle = w.throttle ?? new LoginThrottle();
  }

  /** STARTTLS's context from control/servercert.pem, read at each connection; undefined: none (not offered). */
  private tls(control: Control): SecureContext | undefined {
    const pem = control.raw('servercert.pem');
    if (pem === null || !pem.includes('PRIVATE KEY')) return undefined;
    if (this.cert?.pem !== pem) {
      let context: SecureContext | undefined;
      try {
        context = createSecureContext({ key: pem, cert: pem, minVersion: 'TLSv1.2' });
      } catch (err) {
        this.w.log('odmr.error', { error: `control/servercert.pem unusable, no STARTTLS: ${errText(err)}` });
      }
      this.cert = { pem, context };
    }
    return this.cert.context;
  }

  deps(ip: string, spec: OdmrSpec): OdmrDeps {
    const root = this.w.root;
    const control = new Control(root);
    const mine = (login: string): ReturnType<typeof listHeld> =>
      listHeld(root, control).filter((h) => h.settings.atrn !== '' && h.settings.atrn === login);
    return {
      hostname: control.me() ?? 'quail',
      checkPassword: async (login, password) => {
        const m = await authenticate(root, login, password, {
          directory: await this.dir.get(),
          service: 'smtp',
          recordLogin: false,
        });
        return m === null ? null : `${m.local}@${m.domain}`;
      },
      throttleKey: async (login) => throttleLogin(await this.dir.get(), login),
      cramSecret: (login) => {
        for (const h of mine(login)) {
          try {
            const s = (readFileSync(join(h.home, 'ATRNSECRET'), 'utf8').split('\n')[0] ?? '').trim();
            if (s !== '') return Promise.resolve(s);
          } catch {
            // no secret for this domain: maybe another of the login's
          }
        }
        return Promise.resolve(null);
      },
      domainsOf: (login) => Promise.resolve(mine(login).map((h) => h.domain)),
      waiting: async (domain) => {
        const h = findHeld(root, control, domain);
        return h === undefined ? 0 : waiting(h.maildir);
      },
      push: async (domains, socket, tls) => {
        const held = domains.flatMap((d) => findHeld(root, control, d) ?? []);
        try {
          const r = await pushTurn(held, socketConnector(socket, ip), {
            control,
            inject: this.w.inject,
            // already TLS: no STARTTLS inside it; plain: STARTTLS when the customer's server offers it
            tls: tls ? { mode: 'none' } : { mode: 'may' },
            servername: ip,
          });
          const count = (f: string): number => r.result?.messages.filter((m) => m.fate === f).length ?? 0;
          for (const domain of r.pushed)
            this.w.log('odmr.atrn', {
              ip,
              domain,
              result: r.result?.stopped === undefined ? 'done' : 'stopped',
              sent: count('sent'),
              bounced: count('bounced'),
              kept: count('kept'),
              ...(r.result?.stopped !== undefined ? { why: r.result.stopped } : {}),
            });
          return r.pushed.length === 0 ? 'busy' : 'done';
        } catch (err) {
          this.w.log('held.error', { error: `ODMR push for ${ip}: ${errText(err)}` });
          socket.destroy();
          return 'done';
        }
      },
      tls: this.tls(control),
      plainAuthOk: loopback,
      throttle: this.throttle,
      log: (event, fields) => this.w.log(event, fields),
      // as qmail-smtpd: 0 or less is 1 s
      idleMs: (spec.idleSeconds ?? Math.min(IDLE_CAP_S, Math.max(1, control.number('timeoutsmtpd').value))) * 1000,
    };
  }

  close(): Promise<void> {
    return this.dir.close();
  }
}

/** The odmr listeners of this process: sockets adopted (the child) or accepted here (one process), one link for all. */
export class OdmrServer {
  private readonly link: OdmrLink;

  constructor(private readonly world: OdmrWorld) {
    this.link = new OdmrLink(world);
  }

  /** One listener: its connection limits (`421` over them), and a session for each connection it admits. */
  listener(spec: OdmrSpec): TcpServer {
    const listener = `${spec.host}:${spec.port}`;
    return new TcpServer({
      maxConnections: spec.maxConnections,
      maxPerIp: spec.maxPerIp,
      paused: false,
      halfOpen: false,
      tooMany: (ip, why) => {
        this.world.log('odmr.refused', { ip, why, listener });
        return `421 4.7.0 too many connections${why === 'maxperip' ? ' from your address' : ''}, try again later\r\n`;
      },
      open: (socket: Socket, ip) => ({ done: serveOdmr(socket, ip, this.link.deps(ip, spec)) }),
      acceptFailed: (err) => this.world.log('odmr.error', { listener, error: `accept failed: ${err.message}` }),
    });
  }

  closeLink(): Promise<void> {
    return this.link.close();
  }
}

/**
 * The odmr kind. Root: bound there, served by the odmrd child as control/quailuser (the held Maildirs' owner; it
 * reads the directory read-only and injects bounces into the queue). Not root: served in this process.
 */
export const ODMR_SERVICE: ServiceDef<OdmrSpec> = {
  name: 'odmrd',
  what: 'ODMR',
  kinds: [
    {
      kind: 'odmr',
      port: 366,
      about: 'ODMR (RFC 2645): a customer authenticates, says ATRN, and takes its held mail on the same connection',
      parse: (where, words) => odmrListenerOptions(where, words),
    },
  ],
  kindOf: () => 'odmr',
  script: new URL('./odmr-child.js', import.meta.url),
  optionalInDefault: false,
  checksPasswords: true,
  busyReply: () => '421 4.3.2 service restarting, try again in a minute\r\n',
  events: { listening: 'odmr.listening', error: 'odmr.error' },
  listeningFields: (spec) => ({ address: spec.host, port: spec.port }),
  local(specs, ctx) {
    const queue = ctx.queue;
    const server = new OdmrServer({
      root: ctx.root,
      throttle: ctx.logins.table,
      inject: async (m) => {
        if (!queue) throw new Error('no queue in this process');
        const id = String(await queue.inject(m));
        ctx.onQueued();
        return id;
      },
      log: (e, f) => ctx.log.event(e, f),
    });
    return Promise.resolve({
      listeners: specs.map((spec) => {
        const l = server.listener(spec);
        return { listen: () => l.listen(spec.port, spec.host), close: (g: number) => l.close(g) };
      }),
      reload: () => undefined,
      close: () => server.closeLink(),
    });
  },
};
