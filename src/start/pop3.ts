// POP3 in `quail start`: the pop3 listeners, the directory as authenticator, in this process or an unprivileged child.
import { errText, QuailError } from '../core/index.js';
import { Control } from '../control/index.js';
import {
  authenticate,
  KeptDirectory,
  openDirectory,
  throttleLogin,
  type PasswordVerifier,
} from '../directory/index.js';
import {
  createPop3Server,
  isLoopback,
  MaildirStore,
  pop3ListenerOptions,
  type Pop3Authenticator,
  type Pop3ClientRules,
  type Pop3EventLog,
  type Pop3ListenerSpec,
  type Pop3Server,
} from '../pop3d/index.js';
import { matchTcpRules, parseTcpRulesKept } from '../tcpserver/index.js';
import type { LoginAttempts } from '../throttle/index.js';
import { LastLogins } from './last-login.js';
import type { FromServiceChild } from './privchild.js';
import type { ServiceDef } from './services.js';

/** The POP3 child's own message: a login it accepted (the parent records the last-login time). */
export interface Pop3Login {
  readonly type: 'login';
  readonly login: string;
  readonly at: string;
}

export type FromPop3Child = FromServiceChild<Pop3Login>;

/** control/servercert.pem as the key and certificate, or undefined (no STLS, no implicit TLS). */
function pop3Tls(control: Control): { key: string; cert: string } | undefined {
  const pem = control.raw('servercert.pem');
  return pem === null || !pem.includes('PRIVATE KEY') ? undefined : { key: pem, cert: pem };
}

/**
 * One POP3 client's rules, read at its connection: control/tcp.pop3 (tcprules syntax, as tcp.smtp: `deny`, and
 * `QUAIL_CLEARAUTH="1"` to allow USER/PASS before STLS), the listener's `plaintext=loopback`, and
 * control/defaultdomain when the file exists (vpopmail's meaning: a bare login is user@defaultdomain; qmail-inject's
 * fallback to `me` is not used for logins). An unreadable file throws: the client gets -ERR [SYS/TEMP].
 */
export function pop3ClientRules(
  control: Control,
  ip: string,
  spec: Pick<Pop3ListenerSpec, 'plaintext'>,
): Pop3ClientRules {
  const text = control.raw('tcp.pop3');
  const rule = text === null ? undefined : matchTcpRules(parseTcpRulesKept(text), ip);
  const dd = control.single('defaultdomain');
  return {
    deny: rule?.action === 'deny',
    clearAuth: rule?.env.get('QUAIL_CLEARAUTH') === '1' || (spec.plaintext === 'loopback' && isLoopback(ip)),
    defaultDomain: dd.source === 'file' && dd.value !== null && dd.value !== '' ? dd.value : undefined,
  };
}

/**
 * The directory as POP3 authenticator: `user@domain`/`user%domain` and the password, refused when the mailbox has
 * no-pop; the Maildir is `<root>/<home>/Maildir` (domains/<domain>/<user>/Maildir). The directory is opened at the
 * first login and kept open. `record` receives each successful login (the last-login time is written there).
 */
export class DirectoryAuthenticator implements Pop3Authenticator {
  private readonly dir: KeptDirectory;

  /** `verify`: the password check (default the directory's; tests count its calls). */
  constructor(
    private readonly root: string,
    readonly: boolean,
    private readonly record: (login: string, at: Date) => Promise<void>,
    private readonly verify?: PasswordVerifier,
  ) {
    this.dir = new KeptDirectory(() => openDirectory({ root, readonly }));
  }

  async authenticate(login: string, password: string): Promise<{ login: string; maildir: string } | null> {
    const m = await authenticate(this.root, login, password, {
      directory: await this.dir.get(),
      service: 'pop',
      recordLogin: false,
      ...(this.verify ? { verify: this.verify } : {}),
    });
    return m === null ? null : { login: `${m.local}@${m.domain}`, maildir: `${this.root}/${m.home}/Maildir` };
  }

  async throttleKey(login: string): Promise<string> {
    return throttleLogin(await this.dir.get(), login);
  }

  recordLogin(login: string, _client: unknown, at: Date): Promise<void> {
    return this.record(login, at);
  }

  close(): Promise<void> {
    return this.dir.close();
  }
}

export interface Pop3Deps {
  readonly root: string;
  readonly authenticator: Pop3Authenticator;
  readonly log: Pop3EventLog;
  /** The failed-login table (quail start's one for every service; else one for these servers). */
  readonly throttle?: LoginAttempts;
}

/**
 * The servers for the specs, sharing one MaildirStore (so [IN-USE] spans the plain and the TLS port); each
 * pop3.login and pop3.session event carries `open`, the sessions open across them.
 */
export function makePop3Servers(
  specs: readonly Pop3ListenerSpec[],
  deps: Pop3Deps,
): { servers: Pop3Server[]; setTls: () => void } {
  const control = new Control(deps.root);
  const tls = pop3Tls(control);
  const store = new MaildirStore();
  const servers: Pop3Server[] = [];
  const open = (): number => servers.reduce((n, s) => n + s.connections, 0);
  const log: Pop3EventLog = (event, fields) =>
    deps.log(event, event === 'pop3.login' || event === 'pop3.session' ? { ...fields, open: open() } : fields);
  for (const spec of specs) {
    if (spec.implicitTls && !tls) {
      throw new QuailError(
        `${spec.host}:${spec.port} pop3 tls=implicit needs ${control.path('servercert.pem')} (key and certificate); quail init makes one`,
        false,
      );
    }
    servers.push(
      createPop3Server({
        authenticator: deps.authenticator,
        ...(deps.throttle ? { throttle: deps.throttle } : {}),
        store,
        tls,
        implicitTls: spec.implicitTls,
        log,
        hostname: control.me() ?? 'quail',
        // a fresh snapshot per connection: tcp.pop3 and defaultdomain apply to the next connection, as tcp.smtp does
        clientRules: (ip) => pop3ClientRules(new Control(deps.root), ip, spec),
        allowPlaintext: spec.plaintext === 'allow',
        ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
        ...(spec.stressTimeoutMs !== undefined ? { stressTimeoutMs: spec.stressTimeoutMs } : {}),
        ...(spec.maxPerIp !== undefined ? { maxPerIp: spec.maxPerIp } : {}),
        ...(spec.maxConnections !== undefined ? { maxConnections: spec.maxConnections } : {}),
      }),
    );
  }
  return {
    servers,
    setTls: () => {
      try {
        const t = pop3Tls(new Control(deps.root));
        for (const s of servers) s.setTls(t);
      } catch (err) {
        deps.log('pop3.error', { error: `control/servercert.pem unusable, certificate kept: ${errText(err)}` });
      }
    },
  };
}

/**
 * The pop3 kind of the services table. Not root: the servers run in this process. Root: the listeners are bound
 * there and served by a child running as control/quailuser (the account the domains' Maildirs belong to); logins
 * it reports are recorded in the directory by the parent. A listener of the embedded default that cannot be bound
 * (or, without servercert.pem, its implicit-TLS one) is logged and skipped.
 */
export const POP3_SERVICE: ServiceDef<Pop3ListenerSpec, Pop3Login> = {
  name: 'pop3d',
  what: 'POP3',
  kinds: [
    {
      kind: 'pop3',
      port: 110,
      about: 'POP3 for the mailboxes (995 with tls=implicit)',
      parse: (where, words) => pop3ListenerOptions(where, words),
    },
  ],
  kindOf: () => 'pop3',
  script: new URL('./pop3-child.js', import.meta.url),
  optionalInDefault: true,
  checksPasswords: true,
  needsCert: { test: (spec) => spec.implicitTls, warning: 'pop3.warning' },
  // Before TLS on an implicit-TLS port the client could not read a reply: it sees the connection close.
  busyReply: (spec) => (spec.implicitTls ? undefined : '-ERR [SYS/TEMP] service restarting, try again in a minute\r\n'),
  events: { listening: 'pop3.listening', error: 'pop3.error' },
  listeningFields: (spec) => ({ address: spec.host, port: spec.port, tls: spec.implicitTls ? 'implicit' : 'stls' }),
  local(specs, ctx) {
    const lastLogin = new LastLogins(ctx.root, ctx.log);
    const authenticator = new DirectoryAuthenticator(ctx.root, false, (login, at) => {
      lastLogin.note(login, at);
      return Promise.resolve();
    });
    const { servers, setTls } = makePop3Servers(specs, {
      root: ctx.root,
      authenticator,
      throttle: ctx.logins.table,
      log: (e, f) => ctx.log.event(e, f),
    });
    return Promise.resolve({
      listeners: servers.map((s, i) => {
        const spec = specs[i] as Pop3ListenerSpec;
        return { listen: () => s.listen(spec.port, spec.host), close: (g: number) => s.close(g) };
      }),
      reload: () => setTls(),
      close: async () => {
        await authenticator.close();
        await lastLogin.close();
      },
    });
  },
  parent(ctx) {
    const lastLogin = new LastLogins(ctx.root, ctx.log);
    return {
      // the child serves the network: what it says is checked (LastLogins leaves out what is not a login and a time)
      onMessage: (m) => {
        if (m.type === 'login' && typeof m.login === 'string' && typeof m.at === 'string')
          lastLogin.note(m.login, new Date(m.at));
      },
      close: () => lastLogin.close(),
    };
  },
};
