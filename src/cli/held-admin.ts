// quail held add|show|remove: held domains recorded in the directory, with their home and qmail's lines in step.
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Control } from '../control/index.js';
import {
  deliveryAccount,
  holdDomain,
  locateDirectory,
  openDirectory,
  unholdDomain,
  type HeldRecord,
} from '../directory/index.js';
import {
  findHeld,
  lockDescription,
  oldest,
  parseHostPort,
  readLastPush,
  waiting,
  type HeldDomain,
} from '../held/index.js';
import { action, usageError } from './common.js';
import { dirOptions, printJson, withDirectory, type DirOpts } from './directory.js';

/** The first line of a secret file (kept out of the command line and the shell history). */
function readSecret(path: string): string {
  try {
    return (readFileSync(path, 'utf8').split('\n')[0] ?? '').trim();
  } catch (err) {
    throw usageError(
      `--atrn-secret-file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; give a readable file`,
    );
  }
}

/** `120`, `90s`, `2m`, `1h` → seconds. */
function parseEvery(text: string): number {
  const m = /^([0-9]+)\s*([smh]?)$/i.exec(text.trim());
  const n = m ? Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600 }[(m[2] ?? '').toLowerCase()] ?? 1) : NaN;
  if (!(n >= 1 && n <= 7 * 86400))
    throw usageError(`--every ${JSON.stringify(text)}: give seconds, or minutes/hours like 2m or 1h (1 s to 7 days)`);
  return n;
}

/** The directory's held records, or none when this root has no directory yet (list must not create one). */
export async function heldRecords(root: string): Promise<HeldRecord[]> {
  const loc = locateDirectory(root);
  if (loc.kind === 'sqlite' && !existsSync(loc.file)) return [];
  const dir = await openDirectory({ root });
  try {
    return await dir.listHeld();
  } finally {
    await dir.close();
  }
}

/** What a held domain is doing now: the files' view (waiting, oldest, lock) and the last push (LASTPUSH). */
export interface HeldState {
  readonly domain: string;
  readonly host: string;
  readonly home: string;
  readonly waiting: number;
  readonly oldest: string | null;
  readonly lock: string;
  readonly lastPush: string | null;
  readonly lastResult: string | null;
}

export async function heldState(h: HeldDomain): Promise<HeldState> {
  const old = await oldest(h.maildir);
  const last = readLastPush(h.home);
  return {
    domain: h.domain,
    host: h.relayhost,
    home: h.home,
    waiting: await waiting(h.maildir),
    oldest: old === undefined ? null : new Date(old * 1000).toISOString(),
    lock: await lockDescription(h.lockPath),
    lastPush: last === undefined ? null : new Date(last.at * 1000).toISOString(),
    lastResult: last === undefined ? null : `${last.reached ? '' : 'not reached: '}${last.result}`,
  };
}

function recordJson(r: HeldRecord): Record<string, unknown> {
  return { ...r, atrnSecret: r.atrnSecret === '' ? '' : '(set)', created: r.created.toISOString() };
}

interface AddOpts extends DirOpts {
  host?: string;
  every?: string;
  etrn?: boolean;
  atrn?: string;
  atrnSecretFile?: string;
  autoturn?: string[];
  account?: string;
  replace?: boolean;
}

export function registerAdmin(held: Command): void {
  dirOptions(
    held
      .command('add <domain>')
      .description("hold a domain's mail for a host that is not always online and push it there (no cron needed)")
      .option('--host <host[:port]>', "the customer's mail host (RELAYHOST), port 25 by default")
      .option('--every <interval>', 'push every so often: seconds, or like 2m or 1h', '2m')
      .option('--etrn', 'the customer may ask for a push with ETRN from its host (RFC 1985)')
      .option('--atrn <login>', 'the mailbox login (user@domain) that may take the mail with ODMR ATRN (RFC 2645)')
      .option(
        '--atrn-secret-file <file>',
        "the ATRN login's shared secret for AUTH CRAM-MD5 (first line of the file; fetchmail's ODMR needs it)",
      )
      .option(
        '--autoturn <ip/cidr>',
        'AutoTURN: after an SMTP session from this network, push the held mail to --host (repeatable)',
        (v: string, acc: string[] = []) => [...acc, v],
      )
      .option('--account <user>', 'unix account the held Maildir belongs to (default: control/quailuser)')
      .option('--replace', 'change a domain that is held already'),
  ).action(
    action('held add', (name: string, o: AddOpts) =>
      withDirectory(o, async (ctx) => {
        if (o.host === undefined) throw usageError('give the customer host: --host HOST[:PORT]');
        try {
          parseHostPort(o.host);
        } catch (err) {
          throw usageError(`--host: ${(err as Error).message}`);
        }
        const rec = await holdDomain(
          ctx,
          {
            name,
            host: o.host,
            everySeconds: parseEvery(o.every ?? '2m'),
            etrn: o.etrn === true,
            atrnLogin: o.atrn ?? '',
            atrnSecret: o.atrnSecretFile === undefined ? '' : readSecret(o.atrnSecretFile),
            autoturn: o.autoturn ?? [],
            account: deliveryAccount(ctx.root, o.account),
          },
          o.replace === true,
        );
        if (o.json) printJson(recordJson(rec));
        else
          process.stdout.write(
            `${o.replace === true ? 'changed' : 'holding'} ${rec.name}: mail kept in ${ctx.root}/held/${rec.name}/Maildir, pushed to ${rec.host} every ${rec.everySeconds} s\n`,
          );
      }),
    ),
  );
  dirOptions(held.command('show <domain>').description('a held domain: its settings, mail waiting, last push')).action(
    action('held show', (name: string, o: DirOpts) =>
      withDirectory(o, async (ctx) => {
        const rec = await ctx.dir.getHeld(name);
        const h = findHeld(ctx.root, new Control(ctx.root), name);
        if (rec === null && h === undefined) {
          process.stderr.write(`quail held show: ${name} is not held here (quail held list shows the held ones)\n`);
          return 100;
        }
        const state = h === undefined ? null : await heldState(h);
        if (o.json) {
          printJson({ record: rec === null ? null : recordJson(rec), state });
          return 0;
        }
        const lines: string[] = [];
        if (rec !== null) {
          lines.push(
            `domain:    ${rec.name}`,
            `host:      ${rec.host}`,
            `every:     ${rec.everySeconds} s`,
            `etrn:      ${rec.etrn ? 'yes' : 'no'}`,
            `atrn:      ${rec.atrnLogin || '-'}${rec.atrnSecret === '' ? '' : ' (CRAM-MD5 secret set)'}`,
            `autoturn:  ${rec.autoturn.join(' ') || '-'}`,
            `account:   ${rec.account.user} (uid ${rec.account.uid}, gid ${rec.account.gid})`,
          );
        } else lines.push(`domain:    ${name} (seed layout: not in the directory)`);
        if (state === null)
          lines.push(`files:     missing or incomplete (RELAYHOST, Maildir, routing): quail directory check --repair`);
        else
          lines.push(
            `home:      ${state.home}`,
            `waiting:   ${state.waiting}${state.oldest === null ? '' : ` (oldest ${state.oldest})`}`,
            `lock:      ${state.lock}`,
            `last push: ${state.lastPush === null ? 'never' : `${state.lastPush}: ${state.lastResult ?? ''}`}`,
          );
        process.stdout.write(lines.map((l) => `${l}\n`).join(''));
        return 0;
      }),
    ),
  );
  dirOptions(
    held
      .command('remove <domain>')
      .description('stop holding a domain: its lines go; mail not yet pushed stays in held/<domain>/ unless told')
      .option('--remove-files', 'also delete held/<domain>/ with any mail still in it'),
  ).action(
    action('held remove', (name: string, o: DirOpts & { removeFiles?: boolean }) =>
      withDirectory(o, async (ctx) => {
        const h = findHeld(ctx.root, new Control(ctx.root), name);
        const left = h === undefined ? 0 : await waiting(h.maildir);
        await unholdDomain(ctx, name, o.removeFiles === true);
        if (o.json) printJson({ removed: name.toLowerCase(), waiting: left });
        else {
          process.stdout.write(`${name.toLowerCase()} is no longer held\n`);
          if (left > 0 && o.removeFiles !== true)
            process.stderr.write(
              `quail held remove: warning: ${left} message(s) not pushed stay in ${h?.maildir ?? ''}; push them with quail maildirsmtp first, or delete them\n`,
            );
        }
      }),
    ),
  );
}
