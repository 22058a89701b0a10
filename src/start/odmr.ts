// ODMR in `quail start`: the `odmr` kind of the services table (RFC 2645, port 366), served here or in the odmrd child.
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { authenticate, KeptDirectory, openDirectory } from '../directory/index.js';
import { findHeld, listHeld, pushTurn, serveOdmr, socketConnector, waiting, type OdmrDeps } from '../held/index.js';
import type { NewMessage } from '../queue/index.js';
import { keyValues, type HostPort } from './listeners.js';
import type { ServiceDef } from './services.js';

/** An `odmr` line: `0.0.0.0:366 odmr` (no options yet). */
export type OdmrSpec = HostPort;

const loopback = (ip: string): boolean => /^(127\.|::1$|::ffff:127\.)/.test(ip);

function tlsOf(control: Control): { key: string; cert: string } | undefined {
  const pem = control.raw('servercert.pem');
  return pem === null || !pem.includes('PRIVATE KEY') ? undefined : { key: pem, cert: pem };
}

export interface OdmrWorld {
  readonly root: string;
  readonly inject: (m: NewMessage) => Promise<string>;
  readonly log: (event: 'odmr.session' | 'odmr.atrn' | 'held.error', fields: Readonly<Record<string, unknown>>) => void;
}

/**
 * The session's dependencies over quail's files: the directory (read-only) for PLAIN/LOGIN, the held homes' HELD
 * (`atrn LOGIN`) and ATRNSECRET for which login owns which domains and CRAM-MD5, src/held's pushTurn for the push.
 */
class OdmrLink {
  private readonly dir: KeptDirectory;

  constructor(private readonly w: OdmrWorld) {
    this.dir = new KeptDirectory(() => openDirectory({ root: w.root, readonly: true }));
  }

  deps(ip: string): OdmrDeps {
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
      tls: tlsOf(control),
      plainAuthOk: loopback,
      log: (event, fields) => this.w.log(event, fields),
      idleMs: Math.max(1, control.number('timeoutsmtpd').value) * 1000, // as qmail-smtpd: 0 or less is 1 s
    };
  }

  close(): Promise<void> {
    return this.dir.close();
  }
}

/** The sessions of one or more odmr listeners: adopted sockets (the child) or accepted here (one process). */
export class OdmrServer {
  private readonly sessions = new Set<Socket>();
  private readonly servers: Server[] = [];
  private readonly link: OdmrLink;

  constructor(world: OdmrWorld) {
    this.link = new OdmrLink(world);
  }

  adopt(socket: Socket): void {
    const ip = socket.remoteAddress ?? '';
    this.sessions.add(socket);
    socket.once('close', () => this.sessions.delete(socket));
    socket.resume();
    void serveOdmr(socket, ip, this.link.deps(ip)).finally(() => this.sessions.delete(socket));
  }

  listen(spec: OdmrSpec): Promise<AddressInfo> {
    const srv = createServer((s) => this.adopt(s));
    srv.on('error', () => undefined);
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(spec.port, spec.host, () => {
        srv.off('error', reject);
        const a = srv.address();
        if (a === null || typeof a === 'string') reject(new Error('no address'));
        else resolve(a);
      });
    });
  }

  /** Stop taking connections; sessions get graceMs to finish (a push settles each message first), then are cut. */
  async close(graceMs: number): Promise<void> {
    for (const s of this.servers) s.close();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of this.sessions) s.destroy();
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
      parse: (where, words) => {
        const o = keyValues(words);
        if (typeof o === 'string') return o;
        const extra = Object.keys(o)[0];
        return extra === undefined ? { host: where.host, port: where.port } : `unknown option "${extra}" (none yet)`;
      },
    },
  ],
  kindOf: () => 'odmr',
  script: new URL('./odmr-child.js', import.meta.url),
  optionalInDefault: false,
  busyReply: () => '421 4.3.2 service restarting, try again in a minute\r\n',
  events: { listening: 'odmr.listening', error: 'odmr.error' },
  listeningFields: (spec) => ({ address: spec.host, port: spec.port }),
  local(specs, ctx) {
    const queue = ctx.queue;
    const server = new OdmrServer({
      root: ctx.root,
      inject: async (m) => {
        if (!queue) throw new Error('no queue in this process');
        const id = String(await queue.inject(m));
        ctx.onQueued();
        return id;
      },
      log: (e, f) => ctx.log.event(e, f),
    });
    return Promise.resolve({
      listeners: specs.map((spec) => ({ listen: () => server.listen(spec), close: (g: number) => server.close(g) })),
      reload: () => undefined,
      close: () => server.closeLink(),
    });
  },
};
