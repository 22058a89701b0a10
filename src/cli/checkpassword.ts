// quail checkpassword PROG...: the checkpassword interface (fd 3: user\0password\0timestamp\0) against the directory.
import { spawnSync } from 'node:child_process';
import { fstatSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { errText } from '../core/index.js';
import { authenticate, openDirectory } from '../directory/index.js';
import { addRootOption, resolveRoot } from './common.js';

/** Reads fd 3 to its end (at most 512 bytes, as checkpassword specifies). */
function readFd3(): Buffer {
  const buf = Buffer.alloc(513);
  let n = 0;
  for (;;) {
    let got: number;
    try {
      got = readSync(3, buf, n, buf.length - n, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw err;
    }
    if (got === 0) break;
    n += got;
    if (n >= buf.length) break;
  }
  return buf.subarray(0, n);
}

function fdOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** 0 after PROG ran (its exit code), 1 for bad credentials, 111 for trouble: checkpassword's contract. */
async function check(prog: string[], o: { root?: string; directory?: string }): Promise<number> {
  let input: Buffer;
  try {
    input = readFd3();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    // EINVAL/EBADF: fd 3 is not the caller's input at all — typically npx/npm, which pass only fds 0-2 on.
    const hint =
      code === 'EINVAL' || code === 'EBADF'
        ? ' (fd 3 must carry user\\0password\\0timestamp\\0 from the checkpassword client; npx and npm do not pass fd 3 on: run `node dist/cli/main.js checkpassword` or an installed quail)'
        : '';
    process.stderr.write(`quail checkpassword: unable to read fd 3: ${code}${hint}\n`);
    return 111;
  }
  if (input.length > 512) return 1;
  const parts = input.toString('utf8').split('\0');
  if (parts.length < 3) return 1;
  const [login = '', password = ''] = parts;
  const root = resolveRoot(o.root);
  let dir;
  try {
    dir = await openDirectory({ root, ...(o.directory === undefined ? {} : { url: o.directory }) });
  } catch (err) {
    process.stderr.write(`quail checkpassword: ${errText(err)}\n`);
    return 111;
  }
  let result: { box: Awaited<ReturnType<typeof authenticate>>; uid: number; gid: number } | null = null;
  try {
    // Dovecot says which service asks (SERVICE=imap|pop3|...): no-imap refuses IMAP logins, no-pop the others.
    const service = process.env.SERVICE === 'imap' ? 'imap' : 'pop';
    const box = await authenticate(root, login, password, { directory: dir, service });
    const dom = box ? await dir.getDomain(box.domain) : null;
    result = box && dom ? { box, uid: dom.account.uid, gid: dom.account.gid } : null;
  } catch (err) {
    process.stderr.write(`quail checkpassword: ${errText(err)}\n`);
    return 111;
  } finally {
    await dir.close();
  }
  if (!result?.box) return 1;
  const home = join(root, result.box.home);
  const [cmd, ...args] = prog;
  if (cmd === undefined) return 111;
  // Node cannot exec(2) in place: run PROG as a child with our stdio and pass its exit code on.
  const asUser = process.getuid?.() === 0 ? { uid: result.uid, gid: result.gid } : {};
  // Dovecot's checkpassword-reply answers on fd 4: pass it on when the caller opened it.
  const r = spawnSync(cmd, args, {
    stdio: fdOpen(4) ? [0, 1, 2, 'ignore', 4] : 'inherit',
    cwd: home,
    ...asUser,
    env: { ...process.env, USER: `${result.box.local}@${result.box.domain}`, HOME: home, MAILDIR: `${home}/Maildir/` },
  });
  if (r.error) {
    process.stderr.write(`quail checkpassword: unable to run ${cmd}: ${r.error.message}\n`);
    return 111;
  }
  return r.status ?? 111;
}

export function register(program: Command): void {
  addRootOption(
    program
      .command('checkpassword')
      .description('checkpassword interface: read user\\0password\\0timestamp\\0 from fd 3, run PROG as the mailbox')
      .argument('<prog...>', 'the program to run after a good login (e.g. qmail-pop3d Maildir)')
      .option('--directory <url>', 'directory database (default: control/directory, else ROOT/directory.sqlite)')
      .allowUnknownOption(),
  ).action(async (prog: string[], o: { root?: string; directory?: string }) => {
    try {
      process.exitCode = await check(prog, o);
    } catch (err) {
      process.stderr.write(`quail checkpassword: ${errText(err)}\n`);
      process.exitCode = 111;
    }
  });
}
