// quail backup FILE / quail restore FILE: the whole mail root (directory, control, users, alias, domains, queue) as one tar.gz.
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { backupDirectory, restoreDirectory } from '../directory/index.js';
import { exportQueue, importQueue, openQueue } from '../queue/index.js';
import { newu } from '../users/index.js';
import { CliError, action, addRootOption, resolveRoot, usageError, writableTarget } from './common.js';
import { progressBar, type Progress } from './progress.js';

export const BACKUP_FORMAT = 'quail-backup 1';
const MANIFEST = 'quail-backup.json';
const QUEUE_FILE = 'queue.export';
/** The root's folders copied as they are (owners, modes, times kept). */
const ROOT_PARTS = ['control', 'users', 'alias', 'domains'] as const;

export interface Manifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly created: string;
  readonly root: string;
  readonly directory: 'sqlite' | 'postgres' | null;
  readonly queueMessages: number | null;
  readonly parts: readonly string[];
}

function tar(args: readonly string[]): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 2000) err += b.toString();
    });
    child.on('error', (e) => rej(new CliError(`cannot run tar: ${e.message}`, true)));
    child.on('close', (code) =>
      code === 0
        ? res()
        : rej(new CliError(`tar ${args[0] ?? ''} failed (exit ${code ?? 'signal'}): ${err.trim()}`, true)),
    );
  });
}

export interface BackupOptions {
  readonly directory?: string;
  readonly force?: boolean;
}

/** Writes FILE (via FILE.tmp, then rename): manifest, directory copy, queue export, then the root's folders. */
async function backup(root: string, file: string, o: BackupOptions = {}, bar?: Progress): Promise<Manifest> {
  if (!existsSync(join(root, 'control')))
    throw usageError(`${root} has no control/: not a mail root (give --root DIR)`);
  const out = writableTarget(file);
  if (existsSync(out) && o.force !== true) throw usageError(`${out} exists: choose a new file name, or give --force`);
  let staging: string;
  try {
    staging = mkdtempSync(join(dirname(out), '.quail-backup-'));
  } catch (err) {
    throw new CliError(`cannot write in ${dirname(out)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, true);
  }
  try {
    bar?.tick(0, 1, 'directory');
    const dir = await backupDirectory(root, staging, o.directory);
    let queueMessages: number | null = null;
    if (existsSync(join(root, 'queue'))) {
      const q = await openQueue(root, { create: false });
      try {
        const tick = (done: number, total: number): void => bar?.tick(done, total, 'queue messages');
        queueMessages = (await exportQueue(q, join(staging, QUEUE_FILE), undefined, false, tick)).ids.length;
      } finally {
        q.close();
      }
    }
    const parts = ROOT_PARTS.filter((p) => existsSync(join(root, p)));
    const m: Manifest = {
      format: BACKUP_FORMAT,
      created: new Date().toISOString(),
      root,
      directory: dir?.kind ?? null,
      queueMessages,
      parts,
    };
    writeFileSync(join(staging, MANIFEST), `${JSON.stringify(m, null, 2)}\n`);
    const ours = [MANIFEST, ...(dir ? [dir.file] : []), ...(queueMessages === null ? [] : [QUEUE_FILE])];
    bar?.tick(0, 1, 'archive (tar)');
    await tar(['-czf', `${out}.tmp`, '--numeric-owner', '-C', staging, ...ours, '-C', root, ...parts]);
    bar?.tick(1, 1, 'archive (tar)');
    renameSync(`${out}.tmp`, out);
    return m;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    rmSync(`${out}.tmp`, { force: true });
  }
}

/** `path` with the old root's prefix replaced by the new root's (unchanged when it is not inside the old root). */
const moved = (path: string, from: string, to: string): string =>
  path === from ? to : path.startsWith(`${from}/`) ? to + path.slice(from.length) : path;

/**
 * A root restored somewhere else: users/assign homes (`+dom-:acct:uid:gid:HOME:...`) and a `sqlite:PATH` in
 * control/directory that pointed inside the old root now point inside the new one; users/cdb is rebuilt.
 */
function relocate(root: string, from: string): void {
  if (from === root) return;
  const assign = join(root, 'users', 'assign');
  if (existsSync(assign)) {
    const text = readFileSync(assign, 'latin1')
      .split('\n')
      .map((l) => {
        if (!/^[+=]/.test(l)) return l;
        const f = l.split(':');
        if (f.length > 4 && f[4] !== undefined) f[4] = moved(f[4], from, root);
        return f.join(':');
      })
      .join('\n');
    writeFileSync(assign, text, { encoding: 'latin1' });
    newu(root);
  }
  const ctl = join(root, 'control', 'directory');
  if (existsSync(ctl)) {
    const line = readFileSync(ctl, 'latin1').trim();
    const path = line.startsWith('sqlite:') ? line.slice('sqlite:'.length) : line;
    const now = moved(path, from, root);
    if (now !== path)
      writeFileSync(ctl, `${line.startsWith('sqlite:') ? 'sqlite:' : ''}${now}\n`, { encoding: 'latin1' });
  }
}

/** Unpacks FILE into ROOT (new or empty unless `force`): folders, then the directory, then the queue. */
async function restore(root: string, file: string, o: BackupOptions = {}, bar?: Progress): Promise<Manifest> {
  const src = resolve(file);
  if (!existsSync(src)) throw usageError(`${src} does not exist: give the file quail backup wrote`);
  if (existsSync(root) && readdirSync(root).length > 0 && o.force !== true) {
    throw usageError(`${root} is not empty: restore into a new or empty directory, or give --force to write over it`);
  }
  mkdirSync(root, { recursive: true, mode: 0o755 });
  const staging = mkdtempSync(join(root, '.quail-restore-'));
  try {
    bar?.tick(0, 1, 'unpacking (tar)');
    await tar(['-xzpf', src, '--numeric-owner', '-C', staging]);
    let raw: Partial<Record<keyof Manifest, unknown>>;
    try {
      raw = JSON.parse(readFileSync(join(staging, MANIFEST), 'utf8')) as Partial<Record<keyof Manifest, unknown>>;
    } catch {
      throw usageError(`${src} has no readable ${MANIFEST}: not a quail backup`);
    }
    if (raw.format !== BACKUP_FORMAT || typeof raw.root !== 'string')
      throw usageError(`${src} is not a "${BACKUP_FORMAT}" archive`);
    const m = raw as Manifest;
    for (const p of ROOT_PARTS) {
      const from = join(staging, p);
      if (!existsSync(from)) continue;
      if (existsSync(join(root, p)))
        cpSync(from, join(root, p), { recursive: true, force: true, preserveTimestamps: true });
      else renameSync(from, join(root, p));
    }
    relocate(root, m.root);
    bar?.tick(0, 1, 'directory');
    await restoreDirectory(root, staging, o.directory, o.force === true);
    if (existsSync(join(staging, QUEUE_FILE))) {
      const q = await openQueue(root);
      try {
        await importQueue(q, join(staging, QUEUE_FILE), (done, total) => bar?.tick(done, total, 'queue bytes'));
      } finally {
        q.close();
      }
    }
    return m;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

type Opts = { root?: string; directory?: string; force?: boolean };

export function register(program: Command): void {
  addRootOption(
    program
      .command('backup <file>')
      .description('write the whole mail root (directory, control, users, alias, domains, queue) to FILE, a tar.gz')
      .option('--directory <url>', 'directory database (default: control/directory, else ROOT/directory.sqlite)')
      .option('--force', 'replace FILE if it exists'),
  ).action(
    action('backup', async (file: string, o: Opts) => {
      const bar = progressBar('backup');
      const m = await backup(
        resolveRoot(o.root),
        file,
        { ...(o.directory === undefined ? {} : { directory: o.directory }), force: o.force === true },
        bar,
      ).finally(() => bar.stop());
      process.stdout.write(
        `wrote ${resolve(file)}: directory ${m.directory ?? 'none'}, ${m.queueMessages ?? 0} queued messages, ${m.parts.join(' ')}\n`,
      );
    }),
  );
  addRootOption(
    program
      .command('restore <file>')
      .description('unpack a quail backup into the mail root (which must be new or empty unless --force)')
      .option('--directory <url>', 'restore the directory into this database instead of what control/directory says')
      .option(
        '--force',
        'write over a non-empty root (files in the archive replace ours; the directory is replaced; queued messages are added)',
      ),
  ).action(
    action('restore', async (file: string, o: Opts) => {
      const root = resolveRoot(o.root);
      const bar = progressBar('restore');
      const m = await restore(
        root,
        file,
        { ...(o.directory === undefined ? {} : { directory: o.directory }), force: o.force === true },
        bar,
      ).finally(() => bar.stop());
      process.stdout.write(
        `restored ${root} from ${m.created}: directory ${m.directory ?? 'none'}, ${m.queueMessages ?? 0} queued messages, ` +
          `${m.parts.join(' ')}; check it with quail directory check\n`,
      );
    }),
  );
}
