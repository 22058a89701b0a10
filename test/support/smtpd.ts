// Test helpers: a real listener on 127.0.0.1 over a temporary mail root, a recording queue, a raw client.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Control } from '../../src/control/index.js';
import type { NewMessage, QueueId } from '../../src/queue/types.js';
import { LoginThrottle, type ThrottleOptions } from '../../src/throttle/index.js';
import type { Authenticator, RecipientCheck, SenderCheck } from '../../src/smtpd/auth.js';
import type { MessageChecker } from '../../src/smtpd/check.js';
import type { EtrnService } from '../../src/smtpd/etrn.js';
import type { SessionEnv } from '../../src/smtpd/policy.js';
import { loadTlsContext, SmtpListener, type ListenerKind, type SmtpServerDeps } from '../../src/smtpd/server.js';
import type { SessionEventLog, SessionLimits } from '../../src/smtpd/session.js';
import type { RblResolver } from '../../src/smtpd/rbl.js';

export interface Queued {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly data: string;
  readonly meta: Readonly<Record<string, string>>;
}

export interface Harness {
  readonly root: string;
  readonly port: number;
  readonly queued: Queued[];
  /** inject calls whose data stream was abandoned by smtpd. */
  readonly abandoned: { n: number };
  /** Serves a connection the test accepted itself (SmtpListener.adopt), so the test holds the server's socket. */
  adopt(socket: Socket): void;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly control?: Readonly<Record<string, string>>;
  readonly env?: SessionEnv;
  readonly kind?: ListenerKind;
  readonly options?: Readonly<Record<string, string>>;
  readonly tls?: boolean;
  readonly authenticator?: Authenticator;
  /** Failed-AUTH slowdown (default here: 1 ms doubling to 4 ms, so tests that fail a login do not wait). */
  readonly throttle?: ThrottleOptions;
  /** One throttle for several harnesses (as quail start shares one between its listeners); wins over `throttle`. */
  readonly sharedThrottle?: LoginThrottle;
  readonly recipients?: RecipientCheck;
  readonly senders?: SenderCheck;
  /** Inbound SPF/DKIM/DMARC checks (the listener's `authcheck=` option decides their use). */
  readonly checker?: MessageChecker;
  /** ETRN's held-mail service (absent: ETRN is 502, as in qmail-smtpd). */
  readonly etrn?: EtrnService;
  readonly limits?: Partial<SessionLimits>;
  /** Called after the message was read completely; throw to fail the inject. */
  readonly onCommit?: (m: Queued) => Promise<void> | void;
  readonly maxConnections?: number;
  /** Where to listen (default 127.0.0.1, a free port): another loopback address plays another host. */
  readonly host?: string;
  readonly port?: number;
  /** The resolver of the listener's `rbl=` lists (a DNS server of testdns.ts, say). */
  readonly dns?: () => RblResolver;
  /** Sees the listener's log events. */
  readonly log?: SessionEventLog;
}

/** A self-signed key + certificate in one PEM (what quail init writes to control/servercert.pem). */
function makeCert(dir: string): string {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ],
    { stdio: 'ignore' },
  );
  return readFileSync(key, 'latin1') + readFileSync(cert, 'latin1');
}

export async function harness(o: HarnessOptions = {}): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), 'quail-smtpd-'));
  mkdirSync(join(root, 'control'));
  const control = { me: 'mx.local.test\n', rcpthosts: 'local.test\n', ...o.control };
  for (const [k, v] of Object.entries(control)) writeFileSync(join(root, 'control', k), v, 'latin1');
  if (o.tls) writeFileSync(join(root, 'control', 'servercert.pem'), makeCert(root));
  const queued: Queued[] = [];
  const abandoned = { n: 0 };
  const deps: SmtpServerDeps = {
    controlFor: () => new Control(root),
    queue: {
      async inject(m: NewMessage): Promise<QueueId> {
        const chunks: Buffer[] = [];
        try {
          if (Buffer.isBuffer(m.data)) chunks.push(m.data);
          else for await (const c of m.data) chunks.push(c as Buffer);
        } catch (err) {
          abandoned.n++;
          throw err;
        }
        const q = {
          sender: m.sender,
          recipients: [...m.recipients],
          data: Buffer.concat(chunks).toString('latin1'),
          meta: { ...m.meta },
        };
        await o.onCommit?.(q);
        queued.push(q);
        return `test-${queued.length}` as QueueId;
      },
    },
    ...(o.tls ? { tls: () => loadTlsContext(new Control(root)) } : {}),
    ...(o.authenticator ? { authenticator: o.authenticator } : {}),
    authThrottle: o.sharedThrottle ?? new LoginThrottle(o.throttle ?? { baseMs: 1, maxMs: 4 }),
    ...(o.recipients ? { recipients: o.recipients } : {}),
    ...(o.etrn ? { etrn: o.etrn } : {}),
    ...(o.senders ? { senders: o.senders } : {}),
    ...(o.checker ? { checker: o.checker } : {}),
    ...(o.limits ? { limits: o.limits } : {}),
    ...(o.env ? { envFor: () => o.env as SessionEnv } : {}),
    ...(o.maxConnections !== undefined ? { maxConnections: o.maxConnections } : {}),
    ...(o.dns ? { dns: o.dns } : {}),
    ...(o.log ? { log: o.log } : {}),
  };
  const listener = new SmtpListener(
    { host: o.host ?? '127.0.0.1', port: o.port ?? 0, kind: o.kind ?? 'smtp', options: o.options ?? {} },
    deps,
  );
  const addr = await listener.listen();
  return {
    root,
    port: addr.port,
    queued,
    abandoned,
    adopt: (socket) => listener.adopt(socket),
    async close() {
      await listener.close(1000);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Writes everything at once, half-closes, returns all the server said until it hung up. */
export function talk(port: number, input: string | Buffer, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host, port, allowHalfOpen: true });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => sock.end());
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    sock.end(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  });
}
