// quail start: opens the queue, the scheduler with local and remote delivery, and the listeners (as root: in children).
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { errText, isFullDisk, QuailError } from '../core/index.js';
import { Control, ControlReadError } from '../control/index.js';
import type { Authenticator, ListenerSpec } from '../smtpd/index.js';
import { systemPasswd } from '../users/index.js';
import { rulesFrom } from '../queues/index.js';
import { OfficeKeeper } from '../offices/index.js';
import { LoginThrottle } from '../throttle/index.js';
import { LoginHub } from './login-hub.js';
import type { EventLog } from './log.js';
import type { Account } from './privchild.js';
import { Metrics } from './metrics.js';
import { reachable, unreachableText } from './reach.js';
import { startSendSide, type SendSide } from './send-side.js';
import { startListWriter, type ListWriterService } from './lists-link.js';
import {
  listenerPlan,
  startServices,
  type BoundListener,
  type ListenerOverride,
  type ListenerPlan,
  type RunningService,
  type ServiceContext,
  type ServiceName,
} from './services.js';

export interface Pop3Flags {
  /** `--pop3 HOST:PORT` (plain with STLS) and `--pop3s HOST:PORT` (implicit TLS): replace every pop3 line; `none` = no POP3. */
  readonly pop3?: readonly string[] | undefined;
  readonly pop3s?: readonly string[] | undefined;
}

export interface StartOptions {
  readonly root: string;
  /** `--smtp HOST:PORT` / `--submission HOST:PORT`: replace the control/listeners entries of that kind. */
  readonly smtp?: string;
  readonly submission?: string;
  readonly log: EventLog;
  /** Overrides the user directory's password check (one-process mode only; as root the child uses the directory). */
  readonly authenticator?: Authenticator;
  /** `--pop3` / `--pop3s`: replace the pop3 lines of control/listeners. */
  readonly pop3?: Pop3Flags;
  /** The failed-login table of every service (tests look into it; default: a new one with the defaults). */
  readonly loginThrottle?: LoginThrottle;
}

/** As root: the unprivileged process of one service (smtpd, pop3d, metricsd, webd, odmrd). */
export interface ServiceProcess {
  readonly pid: number;
  /** All of them, when several processes serve (SMTP: control/smtpdprocesses). */
  readonly pids?: readonly number[];
  readonly user: string;
  readonly uid: number;
}

/** Each service's process, under the service's name. */
type ServiceProcesses = { readonly [S in ServiceName]?: ServiceProcess };

export interface RunState extends ServiceProcesses {
  readonly pid: number;
  readonly started: string;
  readonly root: string;
  /** Every bound listener, of every service. */
  readonly listeners: readonly BoundListener[];
  /** Unexpected deaths of the service children since start (each is logged as `<name>.crashed` with its stack). */
  readonly crashes?: Readonly<Record<string, number>>;
  /** As root: the unprivileged process running the scheduler and remote delivery, and how often it was restarted. */
  readonly send?: {
    /** Absent while it is restarting. */
    readonly pid?: number;
    readonly user: string;
    readonly uid: number;
    readonly restarts: number;
    /** Between a death and the replacement's start: when it died and the back-off before the next one. */
    readonly restarting?: { readonly since: string; readonly backoffMs: number };
  };
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
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  // A pid file left by a crash may name a process that has nothing to do with quail now: stale.
  return isQuailStart(pid, root) ? pid : undefined;
}

/**
 * Whether process `pid` is `quail start` for `root`, from /proc/PID/cmdline: quail's main script (`main.js`, or the
 * `quail` link) followed by `start`, and, when its command line says `--root`, this root (resolved from its working
 * directory). Without /proc to tell, or a process this one may not look into, it counts as quail (the old rule).
 */
function isQuailStart(pid: number, root: string): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== 'ENOENT' || !existsSync('/proc/self/cmdline');
  }
  const main = argv.findIndex((a) => ['main.js', 'quail'].includes(basename(a)));
  if (main < 0 || !argv.slice(main + 1).includes('start')) return false;
  const rest = argv.slice(main + 1);
  const at = rest.indexOf('--root');
  const given = at >= 0 ? rest[at + 1] : rest.find((a) => a.startsWith('--root='))?.slice('--root='.length);
  if (given === undefined || given === '') return true; // QUAIL_ROOT or ./var/quail: cannot tell, so it may be ours
  let cwd: string;
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return true;
  }
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(resolve(cwd, given)) === real(root);
}

/** The command-line flags that replace lines of control/listeners, as overrides of the services table's kinds. */
export function overridesOf(opts: { smtp?: string; submission?: string; pop3?: Pop3Flags }): ListenerOverride[] {
  return [
    ...(opts.smtp !== undefined ? [{ flag: '--smtp', value: opts.smtp, kind: 'smtp' }] : []),
    ...(opts.submission !== undefined ? [{ flag: '--submission', value: opts.submission, kind: 'submission' }] : []),
    ...(opts.pop3?.pop3 ?? []).map((value) => ({ flag: '--pop3', value, kind: 'pop3' })),
    ...(opts.pop3?.pop3s ?? []).map((value) => ({ flag: '--pop3s', value, kind: 'pop3', words: ['tls=implicit'] })),
  ];
}

/**
 * control/queues, control/queuerules and the listeners' queue= options must agree before anything listens; the files a
 * listener names (rcpthosts=, tcprules=) must exist.
 */
function checkQueues(control: Control, plan: ListenerPlan): void {
  const specs = plan.listeners.flatMap((l) => (l.service === 'smtpd' ? [l.spec as ListenerSpec] : []));
  const rules = rulesFrom(control);
  const e = rules.errors[0];
  if (e !== undefined)
    throw new QuailError(
      `${control.path(e.file)} line ${e.line}: ${e.reason}; fix the line (see docs/QUEUES.md)`,
      false,
    );
  for (const s of specs) {
    // a listener's own rcpthosts= or tcprules= file must exist when quail starts (a session on it would be refused, or
    // served without the rules the operator meant); removed later, the session rules of docs/LISTENERS.md apply
    for (const key of ['rcpthosts', 'tcprules'] as const) {
      const file = s.options[key];
      if (file !== undefined && file !== 'none' && control.named(file) === null)
        throw new QuailError(
          `${control.path('listeners')}: listener ${s.host}:${s.port} says ${key}=${file}, but ${join(control.root, 'control', file)} does not exist; create it or fix the line (docs/LISTENERS.md)`,
          false,
        );
    }
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
  const { root } = opts;
  const control = new Control(root);
  // Every event of every process passes through here (children relay theirs): the metrics count them (metrics.ts).
  const metrics = new Metrics(root);
  const log = metrics.wrap(opts.log);
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
  const plan = listenerPlan(control, overridesOf(opts));
  checkQueues(control, plan);
  const mxPort = mxPortFromEnv(process.env);
  const account = serviceAccount(control);
  if (account) {
    // before anything starts: otherwise each child fails on its own, with a less direct message (issue 18)
    const r = reachable(root, account.uid, account.gid);
    if (!r.ok) throw new QuailError(`${unreachableText(root, account.name, r)}`, false);
  }
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
      onCrash: () => writeState(),
    }),
  );
  const startedAt = new Date().toISOString();
  const pids: Partial<Record<ServiceName, readonly number[]>> = {};
  const crashes: Record<string, number> = {};
  let services: RunningService[] = [];
  let lists: ListWriterService | undefined;
  let offices: OfficeKeeper | null = null;
  let started = false;
  let pidWritten = false;
  let pidRetry: NodeJS.Timeout | undefined;
  // run/quail.pid. On a full disk (ENOSPC, EDQUOT) the mail goes on without it (the queue may be what frees the
  // space, by delivering): a warning, and another try at each child start or death and every PID_RETRY_MS until it
  // is written. Anything else in the way (a directory) stops the start, as before.
  const writePid = (): void => {
    if (pidWritten) return;
    try {
      writeRunFile(pidFile(root), `${process.pid}\n`);
      pidWritten = true;
      clearInterval(pidRetry);
      if (pidRetry !== undefined)
        log.event('quail.warning', { file: pidFile(root), step: 'write pid', why: 'written now' });
    } catch (err) {
      if (!isFullDisk(err)) throw err;
      rmSync(pidFile(root), { force: true }); // made, but empty: not left for the next start to read
      if (pidRetry !== undefined) return;
      log.event('quail.warning', {
        file: pidFile(root),
        step: 'write pid',
        why: `${errText(err)}: mail goes on; tried again every ${PID_RETRY_MS / 1000} s (until then quail status says not running and the directory commands cannot send SIGHUP)`,
      });
      pidRetry = setInterval(() => {
        if (!stopped) writePid();
      }, PID_RETRY_MS).unref();
    }
  };
  const writeState = (): void => {
    if (!started) return;
    writePid();
    const processes: Partial<Record<ServiceName, ServiceProcess>> = {};
    if (account)
      for (const [name, list] of Object.entries(pids) as [ServiceName, readonly number[] | undefined][]) {
        const pid = list?.[0];
        if (pid !== undefined)
          processes[name] = {
            pid,
            ...(list !== undefined && list.length > 1 ? { pids: list } : {}),
            user: account.name,
            uid: account.uid,
          };
      }
    const state: RunState = {
      pid: process.pid,
      started: startedAt,
      root,
      listeners: services.flatMap((s) => s.listeners),
      ...processes,
      ...(account && (send.pid !== undefined || send.restarting !== undefined)
        ? {
            send: {
              ...(send.pid !== undefined ? { pid: send.pid } : {}),
              user: account.name,
              uid: account.uid,
              restarts: send.restarts,
              ...(send.restarting !== undefined ? { restarting: send.restarting } : {}),
            },
          }
        : {}),
      ...(Object.keys(crashes).length > 0 ? { crashes: { ...crashes } } : {}),
    };
    // write-then-rename: `quail status` never reads half a file. It is called when a child starts or dies: a full
    // disk (or anything else in the way) costs `quail status` its news, never the service.
    try {
      writeFileSync(`${stateFile(root)}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
      renameSync(`${stateFile(root)}.tmp`, stateFile(root));
    } catch (err) {
      log.event('quail.warning', { file: stateFile(root), step: 'write state', why: errText(err) });
    }
  };
  // One failed-login table for SMTP AUTH, POP3, ODMR and the web admin: a guesser gets one allowance, not one a service
  const logins = new LoginHub(opts.loginThrottle ?? new LoginThrottle());
  // Every service of the table (services.ts): as root each in its own child as the account, else in this process.
  const serve = (name: ServiceName): Omit<ServiceContext, 'embedded'> => ({
    root,
    control,
    account,
    log,
    queue: send.queue,
    authenticator: opts.authenticator,
    onQueued: (id) => send.trigger(id),
    onServing: (list) => {
      pids[name] = list;
      writeState();
    },
    onCrash: (n) => {
      crashes[name] = n;
      writeState();
    },
    metrics,
    logins,
  });
  let stopped: Promise<void> | undefined;
  const running: Running = {
    get listeners() {
      return services.flatMap((s) => s.listeners);
    },
    stop(graceMs = 10_000) {
      stopped ??= (async () => {
        log.event('quail.stopping', { pid: process.pid });
        // Delivery workers are unref'd children: keep the loop alive until they have really exited.
        const keepAlive = setInterval(() => undefined, 1000);
        // Each step has a bound: a stuck one is logged by name and the stop goes on (the queue is the truth).
        await stopStep(log, 'listeners', graceMs + STEP_MS, Promise.all(services.map((s) => s.stop(graceMs))));
        await stopStep(log, 'scheduler and deliveries', STOP_DELIVERIES_MS, send.close());
        if (lists) await stopStep(log, 'list writer', STEP_MS, lists.close());
        if (offices) await stopStep(log, 'offices', STEP_MS, offices.stop());
        clearInterval(keepAlive);
        clearInterval(pidRetry);
        // only what this process wrote: a pid file that is a directory (the start failed on it) is not ours
        if (pidWritten) removeRunFile(log, pidFile(root));
        removeRunFile(log, stateFile(root));
        log.event('quail.stopped', { pid: process.pid });
      })();
      return stopped;
    },
    reload() {
      // Nothing a reload step meets may end root (SIGHUP): each step's failure is a warning and the others go on.
      const fields: Record<string, unknown> = {};
      for (const s of services) reloadStep(log, s.name, () => Object.assign(fields, s.reload()));
      reloadStep(log, 'send', () => send.reload());
      log.event('quail.reloaded', { ...fields, note: 'listener changes need a restart' });
      reloadStep(log, 'control', () => warnIgnored(log, new Control(root)));
    },
    flush() {
      send.flush();
      log.event('quail.flush', {});
    },
  };
  // From here on every step that fails stops whatever was started (listeners, children, the send side) before the
  // start fails: a listener left up without a scheduler would take mail and never deliver it.
  let scheduling = false;
  try {
    mkdirSync(runDir(root), { recursive: true });
    services = await within('the listeners', STEP_MS + 30_000, startServices(plan, serve));
    // Mailing lists: list programs run as a domain's account and ask here for directory changes (lists-link.ts).
    if (account) lists = await startListWriter(root, account.gid, log);
    writePid();
    started = true;
    writeState();
    // Offices (control/office): the mailbox→office table and qmail's files follow the shared directory (src/offices).
    // Its first refresh runs before the scheduler starts (which reads the repaired files then); later ones reload it.
    offices = officeKeeper(
      root,
      control,
      log,
      () => {
        if (scheduling) running.reload();
      },
      // A mailbox moved: mail waiting on the office channel (or for a second hop) is tried again now.
      () => {
        if (scheduling) running.flush();
      },
    );
    await offices?.start();
    await within('scheduler start', STEP_MS, send.start());
    scheduling = true;
  } catch (err) {
    await running.stop(0);
    throw err;
  }
  log.event('quail.started', { pid: process.pid, root, ...(mxPort !== undefined ? { mxport: mxPort } : {}) });
  warnIgnored(log, control);
  return running;
}

/** A file of run/ written whole; a failure names the file (temporary: a full disk, a directory in its place). */
function writeRunFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new QuailError(`unable to write ${file}: ${errText(err)}`, true, undefined, { cause: err });
  }
}

/** How often a pid file that a full disk kept out is tried again. */
const PID_RETRY_MS = 10_000;

/** At stop: a file of run/ removed; a failure is logged, never thrown (the stop goes on). */
function removeRunFile(log: EventLog, file: string): void {
  try {
    rmSync(file, { force: true });
  } catch (err) {
    log.event('quail.warning', { file, step: 'stop', why: errText(err) });
  }
}

/** One step of a SIGHUP reload: a failure is logged as a warning (naming the step) and never thrown. */
function reloadStep(log: EventLog, step: string, f: () => void): void {
  try {
    f();
  } catch (err) {
    log.event('quail.warning', {
      ...(err instanceof ControlReadError ? { file: err.file } : {}),
      step: `reload ${step}`,
      why: errText(err),
    });
  }
}

/** What qmail would ignore in the control files without a word (Control.ignored): one warning each. */
function warnIgnored(log: EventLog, control: Control): void {
  for (const u of control.ignored())
    log.event('quail.warning', {
      file: `control/${u.name}${u.line === undefined ? '' : `:${u.line}`}`,
      why: u.why,
    });
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

/** The offices keeper when control/office names this server's office (src/offices), else null. */
function officeKeeper(
  root: string,
  control: Control,
  log: EventLog,
  reload: () => void,
  flush: () => void,
): OfficeKeeper | null {
  const office = control.single('office').value;
  if (office === null || office === '') return null;
  return new OfficeKeeper({
    root,
    office,
    intervalSeconds: Math.max(1, control.number('officerefresh').value),
    events: {
      loaded: (f) => log.event('offices.loaded', f),
      error: (f) => log.event('offices.error', f),
      moving: (f) => log.event('offices.moving', f),
      moved: (f) => log.event('offices.moved', f),
    },
    onFilesChanged: reload,
    onHomesChanged: flush,
  });
}
