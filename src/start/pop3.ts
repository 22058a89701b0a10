// POP3 in `quail start`: the pop3 listeners, the directory as authenticator, in this process or an unprivileged child.
import { errText, QuailError } from '../core/index.js';
import { Control } from '../control/index.js';
import { authenticate, openDirectory, type Directory } from '../directory/index.js';
import {
  createPop3Server,
  isLoopback,
  MaildirStore,
  parsePop3Listener,
  type Pop3Authenticator,
  type Pop3ClientRules,
  type Pop3EventLog,
  type Pop3ListenerSpec,
  type Pop3Server,
} from '../pop3d/index.js';
import { matchTcpRules, parseTcpRules } from '../smtpd/index.js';
import { DEFAULT_LISTENERS, parseHostPort, parseListeners } from './listeners.js';
import type { EventLog } from './log.js';
import { Pop3Child } from './pop3-privsep.js';
import type { Account } from './privsep.js';

/** The pop3 listeners to open and whether they come from the embedded default (then one that cannot open is skipped). */
export interface Pop3Plan {
  readonly specs: readonly Pop3ListenerSpec[];
  readonly embedded: boolean;
}

export interface Pop3Flags {
  /** `--pop3 HOST:PORT` (plain with STLS) and `--pop3s HOST:PORT` (implicit TLS): replace every pop3 line; `none` = no POP3. */
  readonly pop3?: readonly string[] | undefined;
  readonly pop3s?: readonly string[] | undefined;
}

export interface BoundPop3 {
  readonly host: string;
  readonly port: number;
  readonly implicitTls: boolean;
}

export interface Pop3Service {
  readonly listeners: readonly BoundPop3[];
  /** SIGHUP: servercert.pem again. */
  reload(): void;
  /** Stop accepting; sessions get graceMs to finish (nothing is deleted for a cut session). */
  stop(graceMs: number): Promise<void>;
}

/** The pop3 lines of control/listeners (or of the embedded default), or the command-line flags instead. */
export function pop3Plan(control: Control, flags: Pop3Flags = {}): Pop3Plan {
  const given = [
    ...(flags.pop3 ?? []).map((v) => [v, false] as const),
    ...(flags.pop3s ?? []).map((v) => [v, true] as const),
  ];
  if (given.length > 0) {
    const specs: Pop3ListenerSpec[] = [];
    for (const [v, implicitTls] of given) {
      if (v === 'none') continue;
      const hp = parseHostPort(v);
      if (typeof hp === 'string') throw new QuailError(`--${implicitTls ? 'pop3s' : 'pop3'} ${hp}`, false);
      specs.push({ ...hp, implicitTls });
    }
    return { specs, embedded: false };
  }
  const text = control.raw('listeners');
  const specs: Pop3ListenerSpec[] = [];
  const parsed = parseListeners(text ?? DEFAULT_LISTENERS);
  const bad = parsed.errors[0];
  if (bad)
    throw new QuailError(
      `${control.path('listeners')}: "${bad.text}": ${bad.reason}; fix the line (see docs/LISTENERS.md)`,
      false,
    );
  for (const line of parsed.other) {
    const spec = parsePop3Listener(line);
    if (typeof spec === 'string')
      throw new QuailError(
        `${control.path('listeners')}: "${line}": ${spec}; fix the line (see docs/LISTENERS.md)`,
        false,
      );
    specs.push(spec);
  }
  return { specs, embedded: text === null };
}

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
  const rule = text === null ? undefined : matchTcpRules(parseTcpRules(text), ip);
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
  private dir: Promise<Directory> | undefined;

  constructor(
    private readonly root: string,
    private readonly readonly: boolean,
    private readonly record: (login: string, at: Date) => Promise<void>,
  ) {}

  private directory(): Promise<Directory> {
    this.dir ??= openDirectory({ root: this.root, readonly: this.readonly }).catch((err: unknown) => {
      this.dir = undefined; // try again at the next login
      throw err;
    });
    return this.dir;
  }

  async authenticate(login: string, password: string): Promise<{ login: string; maildir: string } | null> {
    const m = await authenticate(this.root, login, password, {
      directory: await this.directory(),
      service: 'pop',
      recordLogin: false,
    });
    return m === null ? null : { login: `${m.local}@${m.domain}`, maildir: `${this.root}/${m.home}/Maildir` };
  }

  recordLogin(login: string, _client: unknown, at: Date): Promise<void> {
    return this.record(login, at);
  }

  async close(): Promise<void> {
    const d = this.dir;
    this.dir = undefined;
    if (d)
      await d.then(
        (x) => x.close(),
        () => undefined,
      );
  }
}

/** Writes the mailbox's last-login time (a read-write directory, opened when first needed). */
class LastLogin {
  private dir: Promise<Directory> | undefined;

  constructor(
    private readonly root: string,
    private readonly log: EventLog,
  ) {}

  async record(login: string, at: Date): Promise<void> {
    const at_ = login.lastIndexOf('@');
    try {
      this.dir ??= openDirectory({ root: this.root });
      await (await this.dir).updateMailbox(login.slice(at_ + 1), login.slice(0, at_), { lastLogin: at });
    } catch (err) {
      this.dir = undefined;
      this.log.event('pop3.warning', { login, error: `last-login time not recorded: ${errText(err)}` });
    }
  }

  async close(): Promise<void> {
    const d = this.dir;
    this.dir = undefined;
    if (d)
      await d.then(
        (x) => x.close(),
        () => undefined,
      );
  }
}

export interface Pop3Deps {
  readonly root: string;
  readonly authenticator: Pop3Authenticator;
  readonly log: Pop3EventLog;
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
        store,
        tls,
        implicitTls: spec.implicitTls,
        log,
        hostname: control.me() ?? 'quail',
        // a fresh snapshot per connection: tcp.pop3 and defaultdomain apply to the next connection, as tcp.smtp does
        clientRules: (ip) => pop3ClientRules(new Control(deps.root), ip, spec),
        allowPlaintext: spec.plaintext === 'allow',
        ...(spec.idleTimeoutMs !== undefined ? { idleTimeoutMs: spec.idleTimeoutMs } : {}),
        ...(spec.maxPerIp !== undefined ? { maxPerIp: spec.maxPerIp } : {}),
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

/** Closes the servers; sessions still running after graceMs are left to the process exit (they delete nothing). */
export async function closeServers(servers: readonly Pop3Server[], graceMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(servers.map((s) => s.close())),
    new Promise((r) => (timer = setTimeout(r, graceMs))),
  ]);
  clearTimeout(timer);
}

/** The specs that can be served: an implicit-TLS line without servercert.pem is an error, or skipped for the default. */
function usable(plan: Pop3Plan, control: Control, log: EventLog): Pop3ListenerSpec[] {
  const tls = pop3Tls(control) !== undefined;
  return plan.specs.filter((s) => {
    if (!s.implicitTls || tls) return true;
    if (!plan.embedded) {
      throw new QuailError(
        `${s.host}:${s.port} pop3 tls=implicit needs ${control.path('servercert.pem')} (key and certificate); quail init makes one`,
        false,
      );
    }
    log.event('pop3.warning', {
      listener: `${s.host}:${s.port}`,
      error: 'no servercert.pem: the implicit-TLS POP3 port of the default is not opened',
    });
    return false;
  });
}

/**
 * Starts POP3. Not root (`account` undefined): the servers run in this process. Root: the listeners are bound
 * here and served by a child running as `account` (control/quailuser, the account the domains' Maildirs belong
 * to); logins it reports are recorded in the directory here. A listener of the embedded default that cannot be
 * bound is logged and skipped; a configured one that cannot be bound stops the start (temporary).
 */
export async function startPop3(opts: {
  root: string;
  control: Control;
  account?: Account | undefined;
  log: EventLog;
  flags?: Pop3Flags;
  onServing?: (pid: number) => void;
  onCrash?: (crashes: number) => void;
}): Promise<Pop3Service> {
  const { root, control, log } = opts;
  const plan = pop3Plan(control, opts.flags);
  const specs = usable(plan, control, log);
  const lastLogin = new LastLogin(root, log);
  if (opts.account && specs.length > 0) {
    const child = new Pop3Child({
      root,
      specs,
      embedded: plan.embedded,
      account: opts.account,
      log,
      onLogin: (login, at) => lastLogin.record(login, at),
      ...(opts.onServing ? { onServing: opts.onServing } : {}),
      ...(opts.onCrash ? { onCrash: opts.onCrash } : {}),
    });
    const bound = await child.start();
    return {
      listeners: bound,
      reload: () => child.reload(),
      stop: async (graceMs) => {
        await child.stop(graceMs);
        await lastLogin.close();
      },
    };
  }
  const authenticator = new DirectoryAuthenticator(root, false, (login, at) => lastLogin.record(login, at));
  const { servers, setTls } = makePop3Servers(specs, { root, authenticator, log: (e, f) => log.event(e, f) });
  const live: Pop3Server[] = [];
  const bound: BoundPop3[] = [];
  for (const [i, s] of servers.entries()) {
    const spec = specs[i] as Pop3ListenerSpec;
    try {
      const a = await s.listen(spec.port, spec.host);
      live.push(s);
      bound.push({ host: a.address, port: a.port, implicitTls: spec.implicitTls });
      log.event('pop3.listening', { address: a.address, port: a.port, tls: spec.implicitTls ? 'implicit' : 'stls' });
    } catch (err) {
      if (plan.embedded) {
        log.event('pop3.error', { listener: `${spec.host}:${spec.port}`, error: `not opened: ${errText(err)}` });
        continue;
      }
      await closeServers(live, 0);
      throw new QuailError(
        `cannot listen on ${spec.host}:${spec.port} (pop3): ${errText(err)}; change control/listeners or --pop3`,
        true,
      );
    }
  }
  return {
    listeners: bound,
    reload: setTls,
    stop: async (graceMs) => {
      await closeServers(live, graceMs);
      await authenticator.close();
      await lastLogin.close();
    },
  };
}
