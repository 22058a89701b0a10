// quail local: qmail-local by hand — `--dry-run` prints a recipient's instructions (-n); otherwise delivers stdin.
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { UniqueNamer } from '../maildir/index.js';
import { defaultPath, runQmailLocal, USAGE } from '../local/index.js';
import type { LocalArgs, LocalRun } from '../local/index.js';
import { localDeliverer } from '../start/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';

interface LocalOpts {
  dryRun?: boolean;
  root?: string;
  path?: string;
  uid?: string;
  gid?: string;
}

function print(run: LocalRun): void {
  for (const c of run.output) (c.fd === 1 ? process.stdout : process.stderr).write(c.data);
}

async function spoolStdin(): Promise<{ path: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'quail-local-'));
  const path = join(dir, 'message');
  await pipeline(process.stdin, createWriteStream(path, { mode: 0o600 }));
  return { path, dir };
}

const num = (what: string, v: string): number => {
  if (!/^\d+$/.test(v)) throw usageError(`--${what} wants a number, not ${JSON.stringify(v)}`);
  return Number(v);
};

async function run(argv: string[], opts: LocalOpts): Promise<number> {
  if (argv.length !== 8) {
    process.stderr.write(`${USAGE}\n`);
    return 100;
  }
  const [user, home, local, dash, ext, domain, sender, defaultDelivery] = argv as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const args: LocalArgs = { user, home, local, dash, ext, domain, sender, defaultDelivery };
  const root = resolveRoot(opts.root);
  const path = opts.path ?? defaultPath(root);
  const me = process.getuid?.() ?? 0;
  const uid = opts.uid !== undefined ? num('uid', opts.uid) : me;
  const gid = opts.gid !== undefined ? num('gid', opts.gid) : (process.getgid?.() ?? 0);
  const injector = user === 'alias' ? { kind: 'alias' as const } : { kind: 'uid' as const, uid };
  if (opts.dryRun) {
    const r = await runQmailLocal(args, { doit: false, path, namer: new UniqueNamer(), injector });
    print(r);
    return r.exitCode;
  }
  const spool = await spoolStdin();
  try {
    if (uid === me && me !== 0) {
      const r = await runQmailLocal(args, {
        doit: true,
        messagePath: spool.path,
        path,
        namer: new UniqueNamer(),
        injector,
        separateStderr: true, // run by hand: its programs write to this command's own stdout and stderr
      });
      print(r);
      if (r.exitCode === 0 && r.forward) return forwardNotQueued(r.forward.recipients);
      return r.exitCode;
    }
    const deliverer = localDeliverer({ path });
    try {
      const res = await deliverer.deliver({ ...args, home, uid, gid, messagePath: spool.path, root });
      (res.result === 'success' ? process.stdout : process.stderr).write(res.report);
      if (res.result === 'success' && res.forward) return forwardNotQueued(res.forward.recipients);
      return res.result === 'success' ? 0 : res.result === 'deferral' ? 111 : 100;
    } finally {
      await deliverer.close();
    }
  } finally {
    rmSync(spool.dir, { recursive: true, force: true });
  }
}

function forwardNotQueued(recipients: readonly string[]): number {
  process.stderr.write(
    `quail local: the forward to ${recipients.join(', ')} was not queued: quail local does not write to the queue; ` +
      'deliver through the scheduler (quail inject) to forward. (#4.3.0)\n',
  );
  return 111;
}

export function register(program: Command): void {
  const cmd = program
    .command('local')
    .description(
      'run qmail-local for one recipient: with --dry-run print the instructions it would follow, otherwise deliver ' +
        'the message on stdin (put -- before the eight arguments; they may be empty or start with -)',
    )
    .argument('[args...]', 'user homedir local dash ext domain sender defaultdelivery')
    .option('-n, --dry-run', 'print the instructions instead of executing them (qmail-local -n)')
    .option('--path <path>', 'PATH for |program lines (default <root>/bin:/usr/local/bin:/usr/bin:/bin)')
    .option('--uid <uid>', 'deliver as this uid (root only; default: the invoking uid)')
    .option('--gid <gid>', 'with --uid: the gid');
  addRootOption(cmd);
  cmd.action(action('local', (argv: string[], opts: LocalOpts) => run(argv, opts)));
}
