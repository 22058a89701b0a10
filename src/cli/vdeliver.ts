// quail vdeliver '' POLICY: the `.qmail-default` program of managed domains when run by /bin/sh (qmail's env, stdin).
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { errText } from '../core/index.js';
import { openDirectory } from '../directory/index.js';
import { runVdeliverLine, type ProgramCall } from '../local/index.js';
import { UniqueNamer } from '../maildir/index.js';
import type { VdeliverForward } from '../vdeliver/index.js';

/** --root, else $QUAIL_ROOT, else ROOT from a working directory ROOT/domains/<domain> (where local runs us). */
function rootFor(opt: string | undefined): string {
  if (opt !== undefined) return resolve(opt);
  const env = process.env['QUAIL_ROOT'];
  if (env !== undefined && env !== '') return resolve(env);
  const cwd = process.cwd();
  if (basename(dirname(cwd)) === 'domains') return dirname(dirname(cwd));
  return resolve('./var/quail');
}

export function register(program: Command): void {
  program
    .command('vdeliver')
    .description(
      "deliver the message on stdin to a managed domain's mailbox (EXT, HOST, SENDER, RPLINE, DTLINE from qmail-local)",
    )
    .argument('[unused]', "vdelivermail's first argument, ignored ('')")
    .argument(
      '[policy]',
      "unknown addresses: bounce-no-mailbox, delete, user@host or mailbox:LOCAL (default: the domain's)",
    )
    .option('--root <dir>', 'mail root (default: $QUAIL_ROOT, else the root above the working directory)')
    .option('--directory <url>', 'directory database (default: control/directory, else ROOT/directory.sqlite)')
    .action(
      async (_unused: string | undefined, policy: string | undefined, o: { root?: string; directory?: string }) => {
        const env = process.env;
        const root = rootFor(o.root);
        const work = mkdtempSync(join(tmpdir(), 'quail-vdeliver-'));
        let code = 111;
        try {
          const messagePath = join(work, 'message');
          await pipeline(process.stdin, createWriteStream(messagePath, { mode: 0o600 }));
          // Read-only, no migration, like local's in-process hook: a delivery runs as the domain's account.
          const dir = await openDirectory({
            root,
            readonly: true,
            ...(o.directory === undefined ? {} : { url: o.directory }),
          });
          try {
            // What qmail-local gave this program; the same delivery as local's in-process hook (runVdeliverLine), so a
            // mailbox's .qmail and an alias's |program run through src/local's runners here too.
            const call: ProgramCall = {
              command: `quail vdeliver '' ${policy ?? ''}`,
              env: stringsOf(env),
              home: process.cwd(),
              messagePath,
              namer: new UniqueNamer(),
            };
            const r = await runVdeliverLine(call, root, dir, policy ?? '');
            if (r.result === 'success' && r.forward) {
              const fwd = await queueForward(root, r.forward, messagePath, work);
              if (fwd !== null) {
                process.stdout.write(`${fwd}\n`);
                return;
              }
              code = 0;
            }
            process.stdout.write(r.report.endsWith('\n') || r.report === '' ? r.report : `${r.report}\n`);
            code = r.result === 'success' ? 0 : r.result === 'failure' ? 100 : 111;
          } finally {
            await dir.close();
          }
        } catch (err) {
          process.stdout.write(`Trouble in vdeliver: ${errText(err)}. (#4.3.0)\n`);
          code = 111;
        } finally {
          rmSync(work, { recursive: true, force: true });
          process.exitCode = code;
        }
      },
    );
}

/** The environment as plain strings (what programs started from here inherit). */
function stringsOf(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Queues a forward through `quail inject -a -f SENDER` (Delivered-To line first); null when queued, else why not. */
function queueForward(root: string, f: VdeliverForward, messagePath: string, work: string): Promise<string | null> {
  const withDt = join(work, 'fwd');
  writeFileSync(withDt, f.prepend, 'latin1');
  const main = join(dirname(fileURLToPath(import.meta.url)), 'main.js');
  const r = spawnSync(
    '/bin/sh',
    [
      '-c',
      'a=$1 b=$2 n=$3 m=$4 r=$5 f=$6; shift 6; cat "$a" "$b" | "$n" "$m" inject --root "$r" -a -f "$f" -- "$@"',
      'sh',
      withDt,
      messagePath,
      process.execPath,
      main,
      root,
      f.sender,
      ...f.recipients,
    ],
    { encoding: 'utf8' },
  );
  if (r.status === 0) return Promise.resolve(null);
  return Promise.resolve(`Unable to forward: ${(r.stderr || r.stdout || `exit ${r.status}`).trim()}. (#4.3.0)`);
}
