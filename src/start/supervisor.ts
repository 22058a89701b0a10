// quail start: opens the queue, the scheduler with local and remote delivery, and the listeners (as root: in children).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errText, QuailError } from '../core/index.js';
import { Control } from '../control/index.js';
import type { FileQueue } from '../queue/index.js';
import {
  loadTlsContext,
  SmtpListener,
  type Authenticator,
  type ListenerKind,
  type ListenerSpec,
} from '../smtpd/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { systemPasswd } from '../users/index.js';
import { DirectoryLink } from './directory-link.js';
import { SmtpChild, type Account, type BoundListener } from './privsep.js';
import { DEFAULT_LISTENERS, parseHostPort, parseListeners } from './listeners.js';
import { rulesFrom } from '../queues/index.js';
import type { EventLog } from './log.js';
import { startPop3, type Pop3Flags, type Pop3Service } from './pop3.js';
import { startSendSide, type SendSide } from './send-side.js';

export interface StartOptions {
  readonly root: string;
  /** `--smtp HOST:PORT` / `--submission HOST:PORT`: replace the control/listeners entries of that kind. */
  readonly smtp?: string;
  readonly submission?: string;
  readonly log: EventLog;
  /** Overrides the user directory's password check (one-process mode only; as root the child uses the directory). */
  readonly authenticator?: Authenticator;
  /** `--pop3` / `--pop3s`: replace the pop3 lines of control/listeners (pop3.ts). */
  readonly pop3?: Pop3Flags;
}

export interface RunState {
  readonly pid: number;
  readonly started: string;
  readonly root: string;
  readonly listeners: ReadonlyArray<{ readonly host: string; readonly port: number; readonly kind: ListenerKind }>;
  /** As root: the unprivileged process serving the listeners. */
  readonly smtpd?: { readonly pid: number; readonly user: string; readonly uid: number };
  /** As root: the unprivileged process serving POP3. */
  readonly pop3d?: { readonly pid: number; readonly user: string; readonly uid: number };
  /** Unexpected deaths of the service children since start (each is logged as `<name>.crashed` with its stack). */
  readonly crashes?: Readonly<Record<string, number>>;
  /** As root: the unprivileged process running the scheduler and remote delivery, and how often it was restarted. */
  readonly send?: { readonly pid: number; readonly user: string; readonly uid: number; readonly restarts: number };
}

export interface Running {
  /** The bound listeners (as root they are served by the unprivileged child process). */
  readonly listeners: readonly BoundListener[];
  /** SIGTERM: stop accepting, let sessions finish (at most graceMs), stop deliveries, remove the pid file. */
  stop(graceMs?: number): Promise<void>;
  /** SIGHUP: control files again; sessions read theirs per connection, the scheduler re-reads locals/virtualdomains. */
  reload(): void;
  /** SIGALRM: retry every deferred recipient now. */
  flush(): void;
}

const runDir = (root: string): string => join(root, 'run');
const pidFile = (root: string): string => join(runDir(root), 'quail.pid');
export const stateFile = (root: string): string => join(runDir(root), 'quail.json');
export const errorsFile = (root: string): string => join(runDir(root), 'errors.log');

/** The pid in <root>/run/quail.pid if that process is alive, else undefined. */
export function runningPid(root: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(root), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** The listeners to open: control/listeners (or its default), with --smtp/--submission replacing their kind. */
function listenerSpecs(control: Control, over: { smtp?: string; submission?: string }): ListenerSpec[] {
  const parsed = parseListeners(control.raw('listeners') ?? DEFAULT_LISTENERS);
  if (parsed.errors.length > 0) {
    const e = parsed.errors[0];
    throw new QuailError(
      `${control.path('listeners')} line ${e?.line ?? 0}: ${e?.reason ?? ''}; fix the line (see docs/LISTENERS.md)`,
      false,
    );
  }
  let specs = parsed.listeners;
  for (const kind of ['smtp', 'submission'] as const) {
    const v = over[kind];
    if (v === undefined) continue;
    const hp = parseHostPort(v);
    if (typeof hp === 'string') throw new QuailError(`--${kind} ${hp}`, false);
    specs = [...specs.filter((s) => s.kind !== kind), { ...hp, kind, options: {} }];
  }
  checkQueues(control, specs);
  return specs;
}

/** control/queues, control/queuerules and the listeners' queue= options must agree before anything listens. */
function checkQueues(control: Control, specs: readonly ListenerSpec[]): void {
  const rules = rulesFrom(control);
  const e = rules.errors[0];
  if (e !== undefined)
    throw new QuailError(
      `${control.path(e.file)} line ${e.line}: ${e.reason}; fix the line (see docs/QUEUES.md)`,
      false,
    );
  for (const s of specs) {
    const q = s.options['queue'];
    if (q !== undefined && !rules.known.has(q))
      throw new QuailError(
        `${control.path('listeners')}: listener ${s.host}:${s.port} names queue ${q}, which control/queues does not define; add a line for it there (see docs/QUEUES.md)`,
        false,
      );
  }
}

/**
 * As root: the account of control/quailuser, which serves network input (never root). Not root: undefined,
 * everything runs in this process as the invoking user.
 */
function serviceAccount(control: Control, passwdFile?: string): Account | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const name = control.single('quailuser').value;
  if (name === null) {
    throw new QuailError(
      `${control.path('quailuser')} is missing: as root, quail serves SMTP as that account; run quail init (it writes the file) or put an account name in it`,
      false,
    );
  }
  const e = systemPasswd(passwdFile !== undefined ? { passwdFile } : {}).byName(name);
  if (!e)
    throw new QuailError(
      `${control.path('quailuser')} names ${name}, which is not an account; create it (useradd --system ${name}) or fix the file`,
      false,
    );
  if (e.uid === 0)
    throw new QuailError(
      `${control.path('quailuser')} names ${name} with uid 0: network input must not be served as root; choose another account`,
      false,
    );
  return { name: e.name, uid: e.uid, gid: e.gid };
}

/**
 * `QUAIL_MX_PORT`: the TCP port for deliveries without an smtproutes relay (MX, implicit MX, address literals)
 * instead of 25, for tests and lab setups; unset or empty = 25. Anything but 1-65535 is a permanent error.
 */
function mxPortFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const v = env['QUAIL_MX_PORT'];
  if (v === undefined || v === '') return undefined;
  const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : 0;
  if (n < 1 || n > 65535) {
    throw new QuailError(
      `QUAIL_MX_PORT=${JSON.stringify(v)} is not a port (1-65535); fix it, or unset it to deliver to MX hosts on port 25`,
      false,
    );
  }
  return n;
}

export async function startQuail(opts: StartOptions): Promise<Running> {
  const { root, log } = opts;
  const control = new Control(root);
  if (control.me() === null) {
    throw new QuailError(
      `${control.path('me')} is missing: run \`quail init --root ${root}\` (or quail start --init)`,
      false,
    );
  }
  const other = runningPid(root);
  if (other !== undefined && other !== process.pid) {
    throw new QuailError(`quail is already running for ${root} (pid ${other}); stop it first`, true);
  }
  const specs = listenerSpecs(control, opts);
  const mxPort = mxPortFromEnv(process.env);
  const account = serviceAccount(control);
  // As root the queue is opened (and recovered) by the send child only; this process keeps none of it (send-side.ts).
  const send: SendSide = await within(
    'queue recovery and the send process',
    RECOVER_MS,
    startSendSide({
      root,
      log,
      account,
      ...(mxPort !== undefined ? { mxPort } : {}),
      onRunning: () => writeState(),
    }),
  );
  const queue: FileQueue | undefined = send.queue;
  const tlsFor = (): ReturnType<typeof loadTlsContext> => loadTlsContext(new Control(root));
  let tlsContext = account ? undefined : safeTls(tlsFor, log);
  const listeners: SmtpListener[] = [];
  const directory = new DirectoryLink(root);
  // one failed-AUTH table for every SMTP listener: a client does not get twice the guesses on a second port
  const authThrottle = new LoginThrottle();
  let child: SmtpChild | undefined;
  let bound: readonly BoundListener[] = [];
  mkdirSync(runDir(root), { recursive: true });
  const startedAt = new Date().toISOString();
  const pids: { smtpd?: number; pop3d?: number } = {};
  const crashes: Record<string, number> = {};
  let started = false;
  const writeState = (): void => {
    if (!started) return;
    const as = (pid: number | undefined): RunState['smtpd'] =>
      account && pid !== undefined ? { pid, user: account.name, uid: account.uid } : undefined;
    const smtpd = as(pids.smtpd);
    const pop3d = as(pids.pop3d);
    const state: RunState = {
      pid: process.pid,
      started: startedAt,
      root,
      listeners: bound,
      ...(smtpd ? { smtpd } : {}),
      ...(pop3d ? { pop3d } : {}),
      ...(account && send.pid !== undefined
        ? { send: { pid: send.pid, user: account.name, uid: account.uid, restarts: send.restarts } }
        : {}),
      ...(Object.keys(crashes).length > 0 ? { crashes: { ...crashes } } : {}),
    };
    // write-then-rename: `quail status` never reads half a file
    writeFileSync(`${stateFile(root)}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(`${stateFile(root)}.tmp`, stateFile(root));
  };
  const serving =
    (name: 'smtpd' | 'pop3d') =>
    (pid: number): void => {
      pids[name] = pid;
      writeState();
    };
  const crashed =
    (name: 'smtpd' | 'pop3d') =>
    (n: number): void => {
      crashes[name] = n;
      writeState();
    };
  if (account) {
    child = new SmtpChild({
      root,
      specs,
      account,
      log,
      onQueued: () => send.trigger(),
      onServing: serving('smtpd'),
      onCrash: crashed('smtpd'),
    });
    try {
      bound = await child.start();
    } catch (err) {
      await send.close();
      throw err;
    }
    for (const b of bound)
      log.event('smtp.listening', { address: b.host, port: b.port, kind: b.kind, user: account.name });
  } else {
    if (!queue) throw new QuailError('no queue in this process', true);
    for (const spec of specs) {
      listeners.push(
        new SmtpListener(spec, {
          controlFor: () => new Control(root),
          queue,
          authenticator: opts.authenticator ?? directory,
          authThrottle,
          recipients: directory,
          senders: directory,
          tls: () => tlsContext,
          log: (name, fields) => log.event(name, fields),
        }),
      );
    }
    bound = await bindAll(listeners, send, log, () => tlsContext !== undefined);
  }
  writeFileSync(pidFile(root), `${process.pid}\n`);
  started = true;
  writeState();
  let stopped: Promise<void> | undefined;
  let pop3: Pop3Service | undefined;
  const running: Running = {
    listeners: bound,
    stop(graceMs = 10_000) {
      stopped ??= (async () => {
        log.event('quail.stopping', { pid: process.pid });
        // Delivery workers are unref'd children: keep the loop alive until they have really exited.
        const keepAlive = setInterval(() => undefined, 1000);
        // Each step has a bound: a stuck one is logged by name and the stop goes on (the queue is the truth).
        await stopStep(
          log,
          'listeners',
          graceMs + STEP_MS,
          Promise.all([...listeners.map((l) => l.close(graceMs)), child?.stop(graceMs), pop3?.stop(graceMs)]),
        );
        await stopStep(log, 'scheduler and deliveries', STOP_DELIVERIES_MS, send.close());
        await stopStep(log, 'directory', STEP_MS, directory.close());
        clearInterval(keepAlive);
        rmSync(pidFile(root), { force: true });
        rmSync(stateFile(root), { force: true });
        log.event('quail.stopped', { pid: process.pid });
      })();
      return stopped;
    },
    reload() {
      if (child) child.reload();
      else tlsContext = safeTls(tlsFor, log);
      pop3?.reload();
      send.reload();
      log.event('quail.reloaded', {
        ...(child ? {} : { starttls: tlsContext !== undefined }),
        note: 'listener changes need a restart',
      });
    },
    flush() {
      send.flush();
      log.event('quail.flush', {});
    },
  };
  try {
    await within('scheduler start', STEP_MS, send.start());
    pop3 = await within(
      'POP3 start',
      STEP_MS + 30_000,
      startPop3({
        root,
        control,
        account,
        log,
        ...(opts.pop3 ? { flags: opts.pop3 } : {}),
        onServing: serving('pop3d'),
        onCrash: crashed('pop3d'),
      }),
    );
  } catch (err) {
    await running.stop(0);
    throw err;
  }
  log.event('quail.started', { pid: process.pid, root, ...(mxPort !== undefined ? { mxport: mxPort } : {}) });
  return running;
}

/** A start-up step that does not finish in time fails the start with its name (issue: never hang silently). */
const STEP_MS = 30_000;
/** Recovery reads every message of the queue once: generous, but not unbounded. */
const RECOVER_MS = 600_000;
/** Deliveries in progress get this long to finish at stop; the rest are retried after the next start. */
const STOP_DELIVERIES_MS = 60_000;

function within<T>(step: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new QuailError(
            `start-up step "${step}" did not finish within ${Math.round(ms / 1000)} s; see the log above for its last event`,
            true,
          ),
        ),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function stopStep(log: EventLog, step: string, ms: number, p: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  const r = await Promise.race([
    p.then(
      () => 'done' as const,
      (err: unknown) => {
        log.event('quail.error', { step, error: errText(err) });
        return 'done' as const;
      },
    ),
    late,
  ]);
  clearTimeout(timer);
  if (r === 'late')
    log.event('quail.error', {
      step,
      error: `stop step "${step}" did not finish within ${Math.round(ms / 1000)} s; going on without it`,
    });
}

/** One process (not root): bind each listener here. */
async function bindAll(
  listeners: readonly SmtpListener[],
  send: SendSide,
  log: EventLog,
  starttls: () => boolean,
): Promise<BoundListener[]> {
  const bound: SmtpListener[] = [];
  try {
    for (const l of listeners) {
      const a = await l.listen();
      bound.push(l);
      log.event('smtp.listening', { address: a.address, port: a.port, kind: l.spec.kind, starttls: starttls() });
    }
  } catch (err) {
    await Promise.all(bound.map((l) => l.close(0)));
    await send.close();
    throw new QuailError(`cannot listen: ${errText(err)}; change control/listeners or --smtp/--submission`, true);
  }
  return listeners.map((l) => ({
    host: l.address?.address ?? l.spec.host,
    port: l.address?.port ?? l.spec.port,
    kind: l.spec.kind,
  }));
}

function safeTls(load: () => ReturnType<typeof loadTlsContext>, log: EventLog): ReturnType<typeof loadTlsContext> {
  try {
    return load();
  } catch (err) {
    log.event('smtp.error', { error: `control/servercert.pem unusable, STARTTLS off: ${errText(err)}` });
    return undefined;
  }
}
