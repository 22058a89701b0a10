// A private, throw-away Postfix instance for the relay benchmark: its own config, queue and data directories.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const POSTFIX = '/usr/sbin/postfix';
const POSTSUPER = '/usr/sbin/postsuper';
const POSTQUEUE = '/usr/sbin/postqueue';
const POSTCONF = '/usr/sbin/postconf';

/** The postfix account's uid and gid (mail_owner), or undefined when there is none. */
function postfixIds(): { uid: number; gid: number } | undefined {
  const id = (flag: string): number =>
    Number(spawnSync('id', [flag, 'postfix'], { encoding: 'utf8' }).stdout.trim() || NaN);
  const uid = id('-u');
  const gid = id('-g');
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

/** Why this machine cannot run the Postfix comparison, or undefined when it can. */
export function postfixUnavailable(): string | undefined {
  if (!existsSync(POSTFIX)) return `${POSTFIX} not installed (Debian: apt-get install postfix)`;
  if (process.getuid?.() !== 0)
    return `not root (uid ${process.getuid?.() ?? '?'}): a Postfix instance must be started by root`;
  if (postfixIds() === undefined) return 'no `postfix` user on this machine (the Debian package creates it)';
  return undefined;
}

export interface PostfixOptions {
  /** Where the instance lives (created; must be reachable by the postfix user: parents at least 0711). */
  readonly dir: string;
  /** Postfix's smtpd listens here (injection). */
  readonly listen: { readonly host: string; readonly port: number };
  /** Every message is relayed here (the benchmark's sink); unused when `virtual` is given. */
  readonly relay: { readonly host: string; readonly port: number };
  /** Deliveries in flight to the relay (destination concurrency). */
  readonly concurrency: number;
  /**
   * Relay only: true (the default) holds every accepted message until releaseToDeferred() and flush() (the queue →
   * sink cases); false relays each as soon as it is queued (SMTP in → sink).
   */
  readonly hold?: boolean;
  /**
   * Local delivery instead of relay: Postfix's virtual(8) delivers each message into a Maildir (written and
   * fsynced before it counts), for these mailboxes (`user@domain` → Maildir path relative to `base`), as `owner`.
   * Nothing is held: a message is delivered as soon as it is queued (unless holdAll(true) is asked later).
   */
  readonly virtual?: {
    readonly base: string;
    readonly mailboxes: ReadonlyMap<string, string>;
    readonly owner: { readonly uid: number; readonly gid: number };
  };
}

export interface PostfixInstance {
  readonly configDir: string;
  /** Messages in the hold queue (everything received is held until release()). */
  held(): number;
  /** Messages anywhere in the queue (incoming, active, deferred, hold, maildrop). */
  queued(): number;
  /** Moves every held message to the deferred queue (postsuper -H ALL): not delivered yet. */
  releaseToDeferred(): void;
  /** Asks the queue manager to deliver the deferred queue now (postqueue -f). */
  flush(): void;
  /**
   * true: smtpd puts every message it accepts from now on on hold (the end-of-data restriction `HOLD`, as the relay
   * configuration's hold), so nothing reaches the queue manager; false: no longer. Takes effect through
   * `postfix reload`: smtpd processes of the old configuration finish their session and are replaced.
   */
  holdAll(on: boolean): void;
  /** The instance's log (maillog_file), for error messages. */
  log(): string;
  /** The master's pid (its processes are its descendants), or undefined when it is not running. */
  masterPid(): number | undefined;
  /** postfix stop; SIGKILL to the master if it is still there after 10 s. Idempotent. */
  stop(): void;
}

/** main.cf lines for virtual(8) delivery to Maildirs (the mailbox map is written beside main.cf). */
function virtualCf(v: NonNullable<PostfixOptions['virtual']>, configDir: string): string {
  const domains = [...new Set([...v.mailboxes.keys()].map((a) => a.slice(a.indexOf('@') + 1)))];
  return `# Local delivery: virtual(8) into Maildirs (a path ending in /), each message fsynced before it counts.
virtual_mailbox_domains = ${domains.join(' ')}
virtual_mailbox_base = ${v.base}
virtual_mailbox_maps = texthash:${join(configDir, 'vmailbox')}
virtual_uid_maps = static:${v.owner.uid}
virtual_gid_maps = static:${v.owner.gid}
virtual_minimum_uid = 1
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
smtpd_tls_security_level = none
notify_classes =
biff = no
message_size_limit = 10240000
`;
}

function mainCf(o: PostfixOptions, d: { spool: string; data: string; dir: string; configDir: string }): string {
  const common = `compatibility_level = 3.6
queue_directory = ${d.spool}
data_directory = ${d.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.invalid
mydomain = invalid
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is off in this benchmark instance
alias_maps =
alias_database =
relay_domains =
inet_interfaces = ${o.listen.host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
default_process_limit = ${Math.max(100, 2 * o.concurrency + 20)}
maillog_file_prefixes = ${d.dir}
maillog_file = ${join(d.dir, 'maillog')}
`;
  if (o.virtual !== undefined)
    return `# quail benchmark: a throw-away instance (${o.dir}); never the system's /etc/postfix.\n${common}${virtualCf(o.virtual, d.configDir)}`;
  const c = o.concurrency;
  return `# quail relay benchmark: a throw-away instance (${o.dir}); never the system's /etc/postfix.
compatibility_level = 3.6
queue_directory = ${d.spool}
data_directory = ${d.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.invalid
mydomain = invalid
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is off in this benchmark instance
alias_maps =
alias_database =
relay_domains =
inet_interfaces = ${o.listen.host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [${o.relay.host}]:${o.relay.port}
smtpd_relay_restrictions = permit_mynetworks, reject
${
  o.hold === false
    ? ''
    : `# Hold every accepted message: the benchmark releases them all at once (see bench/README.md).
smtpd_end_of_data_restrictions = check_client_access static:HOLD
`
}smtpd_peername_lookup = no
smtp_host_lookup = native
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_connection_cache_on_demand = yes
default_destination_concurrency_limit = ${c}
smtp_destination_concurrency_limit = ${c}
smtp_initial_destination_concurrency = ${c}
initial_destination_concurrency = ${c}
default_process_limit = ${Math.max(100, 2 * c + 20)}
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 3600s
notify_classes =
biff = no
message_size_limit = 10240000
maillog_file_prefixes = ${d.dir}
maillog_file = ${join(d.dir, 'maillog')}
`;
}

const masterCf = (o: PostfixOptions): string => `# service type private unpriv chroot wakeup maxproc command
${o.listen.host}:${o.listen.port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
virtual   unix  -       n       n       -       -       virtual
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

/** Files below `dir` (recursively; Postfix hashes some queues into subdirectories). */
function countFiles(dir: string): number {
  let n = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const p = join(dir, name);
    try {
      n += statSync(p).isDirectory() ? countFiles(p) : 1;
    } catch {
      // moved between the listing and the stat (the queue manager at work)
    }
  }
  return n;
}

function masterPid(spool: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(spool, 'pid', 'master.pid'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/** Writes the configuration and runs `postfix -c DIR start`; throws (with the instance's log) when it fails. */
function startPostfix(o: PostfixOptions): PostfixInstance {
  const configDir = join(o.dir, 'etc');
  const spool = join(o.dir, 'spool');
  const data = join(o.dir, 'data');
  for (const d of [configDir, spool, data]) mkdirSync(d, { recursive: true, mode: 0o755 });
  const ids = postfixIds();
  if (ids === undefined) throw new Error('no `postfix` user on this machine');
  chownSync(data, ids.uid, ids.gid);
  writeFileSync(join(configDir, 'main.cf'), mainCf(o, { spool, data, dir: o.dir, configDir }));
  if (o.virtual !== undefined)
    writeFileSync(
      join(configDir, 'vmailbox'),
      [...o.virtual.mailboxes].map(([address, path]) => `${address} ${path}\n`).join(''),
    );
  writeFileSync(join(configDir, 'master.cf'), masterCf(o));
  const logFile = join(o.dir, 'maillog');
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    spawnSync(POSTFIX, ['-c', configDir, 'stop'], { stdio: 'ignore', timeout: 20_000 });
    const pid = masterPid(spool);
    if (pid === undefined) return;
    for (let i = 0; i < 100 && alive(pid); i++) sleepSync(100);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  };
  const run = (cmd: string, args: string[]): void => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) {
      throw new Error(
        `${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal ?? '?'}`}): ${(r.stderr || r.stdout).trim()}\n${log().slice(-2000)}`,
      );
    }
  };
  try {
    run(POSTFIX, ['-c', configDir, 'start']);
    if (masterPid(spool) === undefined)
      throw new Error(`postfix -c ${configDir} start: no master.pid\n${log().slice(-2000)}`);
  } catch (err) {
    stop();
    throw err;
  }
  return {
    configDir,
    held: () => countFiles(join(spool, 'hold')),
    queued: () =>
      ['maildrop', 'incoming', 'active', 'deferred', 'hold'].reduce((n, q) => n + countFiles(join(spool, q)), 0),
    holdAll: (on) => {
      const rule = 'smtpd_end_of_data_restrictions';
      run(POSTCONF, ['-c', configDir, ...(on ? ['-e', `${rule}=check_client_access static:HOLD`] : ['-X', rule])]);
      run(POSTFIX, ['-c', configDir, 'reload']);
    },
    releaseToDeferred: () => run(POSTSUPER, ['-c', configDir, '-H', 'ALL']),
    flush: () => run(POSTQUEUE, ['-c', configDir, '-f']),
    log,
    masterPid: () => masterPid(spool),
    stop,
  };
}

/** Starts an instance, runs `fn` with it and stops it afterwards: also at ^C or a kill of the bench. */
export async function withPostfix<T>(o: PostfixOptions, fn: (pf: PostfixInstance) => Promise<T>): Promise<T> {
  const pf = startPostfix(o);
  const onSignal = (): void => {
    pf.stop();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(pf);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    pf.stop();
  }
}
