// quail init: creates (or completes) a mail root; idempotent, never overwrites an existing file.
import {
  appendFileSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { asciiLower, tempError } from '../core/index.js';
import { Control } from '../control/index.js';
import { newu, parsePasswd, type PasswdEntry } from '../users/index.js';
import { reachable, unreachableText } from '../start/index.js';
import { action, addRootOption, resolveRoot, usageError } from './common.js';
import { writeBin } from './toolbox.js';

export interface InitOptions {
  readonly root: string;
  /** control/me when it is missing (default: os.hostname()). */
  readonly me?: string;
  readonly domains?: readonly string[];
  /** Account deliveries run as (default: the invoking user, or `quail` when run as root). */
  readonly user?: string;
  /** For tests: the passwd file to resolve accounts in (default /etc/passwd). */
  readonly passwdFile?: string;
}

export interface InitStep {
  readonly path: string;
  readonly action: 'created' | 'appended' | 'kept' | 'ran' | 'warning';
  readonly detail?: string;
}

/** The account and ids quail's deliveries (and its unprivileged parts) run as. */
interface Owner {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

function readPasswd(file: string): PasswdEntry[] {
  try {
    return parsePasswd(readFileSync(file, 'latin1'));
  } catch (err) {
    throw tempError(`unable to read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
  }
}

/** --user, else the invoking user when not root, else `quail` (created with useradd if missing). */
function resolveOwner(opts: InitOptions, root: string, steps: InitStep[]): Owner {
  const file = opts.passwdFile ?? '/etc/passwd';
  const find = (name: string): PasswdEntry | undefined => readPasswd(file).find((e) => e.name === name);
  const amRoot = process.getuid?.() === 0;
  if (opts.user !== undefined) {
    const e = find(opts.user);
    if (!e) throw usageError(`no account named ${opts.user} in ${file}; create it or choose another with --user`);
    if (e.uid === 0) throw usageError(`deliveries may not run as root (uid 0); choose another account with --user`);
    if (!amRoot && e.uid !== process.getuid?.()) {
      throw usageError(`only root can give files to ${opts.user}; run as root or as ${opts.user}, or drop --user`);
    }
    return { name: e.name, uid: e.uid, gid: e.gid };
  }
  if (!amRoot) {
    const me = userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid };
  }
  let e = find('quail');
  if (!e) {
    const r = spawnSync(
      'useradd',
      ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--home-dir', root, 'quail'],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) {
      throw tempError(
        `unable to create the account quail with useradd: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`,
      );
    }
    steps.push({ path: file, action: 'ran', detail: 'useradd --system quail' });
    e = find('quail');
    if (!e) throw tempError(`useradd said it created quail, but ${file} has no such account`);
  }
  return { name: e.name, uid: e.uid, gid: e.gid };
}

/** Writes the steps; every path it creates is recorded, every existing one left alone. */
class Builder {
  readonly steps: InitStep[] = [];
  constructor(readonly root: string) {}

  private exists(p: string): boolean {
    try {
      lstatSync(p);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw tempError(`unable to check ${p}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err);
    }
  }

  dir(rel: string, mode: number, owner?: Owner): void {
    const p = join(this.root, rel);
    if (this.exists(p)) {
      this.steps.push({ path: p, action: 'kept' });
      return;
    }
    mkdirSync(p, { mode });
    if (owner) chownSync(p, owner.uid, owner.gid);
    this.steps.push({ path: p, action: 'created' });
  }

  file(rel: string, text: string, mode: number, owner?: Owner, detail?: string): boolean {
    const p = join(this.root, rel);
    if (this.exists(p)) {
      this.steps.push({ path: p, action: 'kept' });
      return false;
    }
    writeFileSync(p, text, { mode, flag: 'wx', encoding: 'latin1' });
    if (owner) chownSync(p, owner.uid, owner.gid);
    this.steps.push({ path: p, action: 'created', ...(detail === undefined ? {} : { detail }) });
    return true;
  }

  /** Appends lines to an existing file (adding the missing final newline first). */
  append(rel: string, lines: readonly string[], detail: string): void {
    const p = join(this.root, rel);
    const old = readFileSync(p, 'latin1');
    const sep = old === '' || old.endsWith('\n') ? '' : '\n';
    appendFileSync(p, sep + lines.map((l) => `${l}\n`).join(''), 'latin1');
    this.steps.push({ path: p, action: 'appended', detail });
  }

  maildir(rel: string, owner: Owner): void {
    this.dir(rel, 0o700, owner);
    for (const sub of ['cur', 'new', 'tmp']) this.dir(join(rel, sub), 0o700, owner);
  }
}

/** control/servercert.pem (key + self-signed certificate) for STARTTLS, made by openssl when missing. */
function makeCert(b: Builder, me: string, owner: Owner): void {
  const p = join(b.root, 'control', 'servercert.pem');
  if (existsSync(p)) {
    b.steps.push({ path: p, action: 'kept' });
    return;
  }
  const work = join(tmpdir(), `quail-init-${process.pid}-${Date.now()}`);
  mkdirSync(work, { mode: 0o700 });
  try {
    const key = join(work, 'key.pem');
    const cert = join(work, 'cert.pem');
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        `/CN=${me}`,
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) {
      throw tempError(
        `openssl could not make a certificate: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`,
      );
    }
    b.file(
      join('control', 'servercert.pem'),
      readFileSync(key, 'latin1') + readFileSync(cert, 'latin1'),
      0o600,
      owner,
      `self-signed, CN=${me}, 10 years`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** users/assign with `+D-:...` lines for new domains, inserted before the terminating `.` line. */
function assignText(old: string | null, add: readonly string[]): string {
  if (old === null) return [...add, '.'].map((l) => `${l}\n`).join('');
  const lines = old.split('\n');
  const dot = lines.findIndex((l) => l.startsWith('.'));
  if (dot < 0) {
    const body = old === '' || old.endsWith('\n') ? old : `${old}\n`;
    return body + [...add, '.'].map((l) => `${l}\n`).join('');
  }
  return [...lines.slice(0, dot), ...add, ...lines.slice(dot)].join('\n');
}

/**
 * Creates or completes the mail root at opts.root. Returns what it did, path by path. Never overwrites a
 * file; appends only the missing `--domain` lines to virtualdomains, rcpthosts and users/assign.
 */
export function initRoot(opts: InitOptions): InitStep[] {
  const root = opts.root;
  const domains = [...new Set((opts.domains ?? []).map(asciiLower))];
  for (const d of domains)
    if (!NAME.test(d)) throw usageError(`--domain ${d}: not a domain name (letters, digits, - and _ between dots)`);
  if (opts.me !== undefined && !NAME.test(opts.me)) throw usageError(`--me ${opts.me}: not a host name`);
  if (/[:\n]/.test(root))
    throw usageError(`mail root ${root} contains ':' or a newline, which users/assign cannot express`);

  const b = new Builder(root);
  const owner = resolveOwner(opts, root, b.steps);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  b.dir('control', 0o755);
  const existingMe = new Control(root).me();
  const me = existingMe ?? opts.me ?? hostname();
  b.file('control/me', `${me}\n`, 0o644, undefined, me);
  if (existingMe !== null && opts.me !== undefined && opts.me !== existingMe) {
    b.steps.push({
      path: join(root, 'control', 'me'),
      action: 'kept',
      detail: `--me ${opts.me} ignored: the file says ${existingMe}`,
    });
  }
  b.file('control/locals', `${me}\n`, 0o644);
  b.file('control/defaultdelivery', './Maildir/\n', 0o644);
  b.file('control/quailuser', `${owner.name}\n`, 0o644, undefined, owner.name);
  // control/databytes is not written: when it is missing the limit is already 35 MiB (the catalogue's default; qmail
  // had none), and a file here would shadow an old installation's own value at `quail import qmail` (kept ours).
  const reach = reachable(root, owner.uid, owner.gid);
  if (!reach.ok && process.getuid?.() === 0)
    b.steps.push({ path: root, action: 'warning', detail: unreachableText(root, owner.name, reach) });

  // rcpthosts: me plus each domain; an existing file only gets the missing domains.
  const control = new Control(root);
  const rcpt = control.list('rcpthosts').value;
  if (rcpt === null) b.file('control/rcpthosts', [me, ...domains].map((l) => `${l}\n`).join(''), 0o644);
  else {
    const have = new Set(rcpt.map(asciiLower));
    const missing = domains.filter((d) => !have.has(d));
    if (missing.length > 0) b.append('control/rcpthosts', missing, missing.join(' '));
    else b.steps.push({ path: control.path('rcpthosts'), action: 'kept' });
  }
  const vd = control.map('virtualdomains').value;
  const vdMissing = domains.filter((d) => !vd?.has(d));
  if (vd === null && domains.length > 0)
    b.file('control/virtualdomains', vdMissing.map((d) => `${d}:${d}\n`).join(''), 0o644);
  else if (vdMissing.length > 0)
    b.append(
      'control/virtualdomains',
      vdMissing.map((d) => `${d}:${d}`),
      vdMissing.join(' '),
    );
  makeCert(b, me, owner);

  // alias/: owned by the system's alias account when there is one (qmail's), else by the quail account.
  const alias = readPasswd(opts.passwdFile ?? '/etc/passwd').find((e) => e.name === 'alias');
  const aliasOwner: Owner = alias ? { name: alias.name, uid: alias.uid, gid: alias.gid } : owner;
  b.dir('alias', 0o755, aliasOwner);
  b.maildir('alias/Maildir', aliasOwner);
  for (const n of ['postmaster', 'mailer-daemon', 'root'])
    b.file(`alias/.qmail-${n}`, './Maildir/\n', 0o644, aliasOwner);

  b.dir('queue', 0o700, owner);
  b.dir('domains', 0o755);
  for (const d of domains) {
    b.dir(`domains/${d}`, 0o755, owner);
    b.file(`domains/${d}/.qmail-postmaster`, './postmaster/Maildir/\n', 0o644, owner);
    b.dir(`domains/${d}/postmaster`, 0o755, owner);
    b.maildir(`domains/${d}/postmaster/Maildir`, owner);
  }

  // users/assign (+D-: wildcard per domain, before the terminating '.'), then users/cdb.
  b.dir('users', 0o755);
  const assignPath = join(root, 'users', 'assign');
  const oldAssign = existsSync(assignPath) ? readFileSync(assignPath, 'latin1') : null;
  const have = new Set((oldAssign ?? '').split('\n').map((l) => asciiLower(l.slice(0, l.indexOf(':') + 1))));
  const add = domains
    .filter((d) => !have.has(`+${d}-:`))
    .map((d) => `+${d}-:${owner.name}:${owner.uid}:${owner.gid}:${join(root, 'domains', d)}:-::`);
  if (oldAssign === null) b.file('users/assign', assignText(null, add), 0o644);
  else if (add.length > 0) {
    writeFileSync(`${assignPath}.tmp`, assignText(oldAssign, add), { mode: 0o644, encoding: 'latin1' });
    renameSync(`${assignPath}.tmp`, assignPath);
    b.steps.push({
      path: assignPath,
      action: 'appended',
      detail: add.map((l) => l.slice(0, l.indexOf(':'))).join(' '),
    });
  } else b.steps.push({ path: assignPath, action: 'kept' });
  if (add.length > 0 || !existsSync(join(root, 'users', 'cdb'))) {
    newu(root);
    b.steps.push({ path: join(root, 'users', 'cdb'), action: 'ran', detail: 'newu' });
  }
  return b.steps;
}

export function render(root: string, steps: readonly InitStep[]): string {
  return steps
    .map((s) => `${s.action.padEnd(8)} ${relative(root, s.path) || s.path}${s.detail ? ` (${s.detail})` : ''}\n`)
    .join('');
}

export function register(program: Command): void {
  addRootOption(
    program
      .command('init')
      .description('create or complete the mail root (never overwrites a file)')
      .option('--me <host>', "this host's name for control/me (default: the system host name)")
      .option(
        '--domain <domain>',
        'add a virtual domain delivered under domains/<domain> (repeatable)',
        (v: string, acc: string[]) => [...acc, v],
        [] as string[],
      )
      .option('--user <account>', 'account deliveries run as (default: you, or `quail` as root)'),
  ).action(
    action('init', async (o: { root?: string; me?: string; domain: string[]; user?: string }) => {
      const root = resolveRoot(o.root);
      const steps = initRoot({
        root,
        domains: o.domain,
        ...(o.me === undefined ? {} : { me: o.me }),
        ...(o.user === undefined ? {} : { user: o.user }),
      });
      // bin/: qmail's helper programs for .qmail files (src/toolbox); quail's own scripts, so kept up to date.
      for (const name of await writeBin(root)) steps.push({ path: join(root, 'bin', name), action: 'created' });
      process.stdout.write(render(root, steps));
      for (const s of steps)
        if (s.action === 'warning') process.stderr.write(`quail init: warning: ${s.detail ?? ''}\n`);
      const made = steps.filter((s) => s.action !== 'kept' && s.action !== 'warning').length;
      process.stdout.write(made === 0 ? `nothing to do: ${root} is complete\n` : `mail root ${root} ready\n`);
    }),
  );
}
