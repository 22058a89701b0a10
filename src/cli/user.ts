// quail user add|del|passwd|mod|info|list: mailboxes in the directory (vadduser, vdeluser, vpasswd, vmoduser, vuserinfo).
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { perform, type Principal } from '../access/index.js';
import {
  hashScheme,
  parseAddress,
  parseFlag,
  type Mailbox,
  type MailboxFlag,
  type MailboxPatch,
} from '../directory/index.js';
import { action, usageError } from './common.js';
import { registerMove } from './move.js';
import { dirOptions, parseCount, parseSize, printJson, withDirectory, type DirOpts } from './directory.js';

interface PwOpts {
  password?: string;
  passwordStdin?: boolean;
  noPassword?: boolean;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

/** Asks on the terminal without echo, twice. */
async function prompt(): Promise<string> {
  const ask = (q: string): Promise<string> =>
    new Promise((res) => {
      process.stderr.write(q);
      const mute = new Writable({ write: (_c, _e, cb) => cb() });
      const rl = createInterface({ input: process.stdin, output: mute, terminal: true });
      rl.question('', (a) => {
        rl.close();
        process.stderr.write('\n');
        res(a);
      });
    });
  const a = await ask('New password: ');
  const b = await ask('Again: ');
  if (a !== b) throw usageError('the two passwords differ; nothing changed');
  return a;
}

/** --password PW, --password-stdin (first line), else a prompt on a terminal; null for --no-password. */
export async function passwordFrom(o: PwOpts, allowNone: boolean): Promise<string | null> {
  if (o.noPassword) {
    if (!allowNone) throw usageError('--no-password is only for user add');
    return null;
  }
  let pw: string;
  if (o.password !== undefined) pw = o.password;
  else if (o.passwordStdin) pw = (await readAll(process.stdin)).split(/\r?\n/)[0] ?? '';
  else if (process.stdin.isTTY) pw = await prompt();
  else throw usageError('no password: give --password PW, --password-stdin, or run on a terminal to be asked');
  if (pw === '') throw usageError('the password is empty; give one (or --no-password to add a mailbox without login)');
  return pw;
}

/** The command line is the system administrator's: src/access allows it everything (the check is still the one). */
const SYSTEM: Principal = { kind: 'system' };

const withPw = (c: Command): Command =>
  c
    .option('--password <pw>', 'the password (visible to other local users in ps; prefer --password-stdin)')
    .option('--password-stdin', 'read the password from the first line of standard input');

const collect = (v: string, acc: string[]): string[] => [...acc, v];

function mailboxJson(m: Mailbox): Record<string, unknown> {
  const { passwordHash, ...rest } = m;
  return {
    ...rest,
    address: `${m.local}@${m.domain}`,
    passwordScheme: hashScheme(passwordHash),
    created: m.created.toISOString(),
    lastLogin: m.lastLogin?.toISOString() ?? null,
  };
}

function render(m: Mailbox, root: string): string {
  const q = (n: number | null, unit: string): string => (n === null ? 'none' : `${n}${unit}`);
  return [
    `address:   ${m.local}@${m.domain}`,
    `name:      ${m.realName || '-'}`,
    `password:  ${hashScheme(m.passwordHash)}`,
    `quota:     ${q(m.quotaBytes, ' bytes')}, ${q(m.quotaMessages, ' messages')}`,
    `flags:     ${m.flags.join(' ') || '-'}`,
    `forward:   ${m.forward.length === 0 ? '-' : `${m.forward.join(' ')}${m.keepCopy ? ' (keeping a copy)' : ''}`}`,
    `spam:      ${m.spamFolder === null ? 'inbox' : `folder ${m.spamFolder} (${root}/${m.home}/Maildir/.${m.spamFolder}/)`}`,
    `maildir:   ${root}/${m.home}/Maildir/`,
    `created:   ${m.created.toISOString()}`,
    `last login: ${m.lastLogin?.toISOString() ?? 'never'}`,
  ]
    .map((x) => `${x}\n`)
    .join('');
}

interface ModOpts {
  name?: string;
  quota?: string;
  quotaMessages?: string;
  flag: string[];
  unflag: string[];
  forward: string[];
  noForward?: boolean;
  keepCopy?: boolean;
  spamFolder?: string | false;
}

export function register(program: Command): void {
  const cmd = program.command('user').description('mailboxes of virtual domains');
  dirOptions(
    withPw(cmd.command('add <address>').description('add a mailbox and its Maildir'))
      .option('--no-password', 'no password: the mailbox cannot log in')
      .option('--name <real name>', "the owner's name")
      .option('--quota <size>', 'quota in bytes (K, M, G suffixes; none)')
      .option('--quota-messages <n>', 'quota in messages')
      .option(
        '--flag <flag>',
        'a flag such as no-pop, no-imap, no-smtp-auth, no-relay, bounce-all, domain-admin (repeatable)',
        collect,
        [] as string[],
      )
      .option('--office <name>', 'the home office (default: the only office; required when there are several)'),
  ).action(
    action(
      'user add',
      (
        address: string,
        o: DirOpts &
          Omit<PwOpts, 'password'> & {
            password?: string | boolean;
            name?: string;
            quota?: string;
            quotaMessages?: string;
            flag: string[];
            office?: string;
          },
      ) =>
        withDirectory(o, async (ctx) => {
          // commander turns --no-password into password: false.
          const noPassword = o.password === false;
          const pwOpts: PwOpts = {
            noPassword,
            ...(typeof o.password === 'string' ? { password: o.password } : {}),
            ...(o.passwordStdin ? { passwordStdin: true } : {}),
          };
          const pw = await passwordFrom(pwOpts, true);
          // through src/access, as the web admin's changes (the system administrator may do everything)
          await perform(ctx, SYSTEM, {
            op: 'mailbox.add',
            address,
            password: pw,
            ...(o.name === undefined ? {} : { realName: o.name }),
            ...(o.quota === undefined ? {} : { quotaBytes: parseSize(o.quota, '--quota') }),
            ...(o.quotaMessages === undefined
              ? {}
              : { quotaMessages: parseCount(o.quotaMessages, '--quota-messages') }),
            flags: o.flag.map(parseFlag),
            ...(o.office === undefined ? {} : { office: o.office }),
          });
          const [local, domain] = parseAddress(address);
          const m = await ctx.dir.getMailbox((await ctx.dir.resolveDomain(domain))?.name ?? domain, local);
          if (!m) throw usageError(`${address} vanished while it was added`);
          if (o.json) printJson(mailboxJson(m));
          else process.stdout.write(`added ${m.local}@${m.domain}\n`);
          // An alias of the same name wins at delivery (vpopmail's .qmail-NAME beside a user, seed 000's postmaster):
          // allowed on purpose, but the mailbox then receives nothing, so say so.
          if (await ctx.dir.getAlias(m.domain, m.local))
            process.stderr.write(
              `quail: warning: the alias ${m.local}@${m.domain} takes this address's mail, so the mailbox receives none ` +
                `(it can still log in); remove the alias (quail alias del ${m.local}@${m.domain}) if it should\n`,
            );
        }),
    ),
  );
  dirOptions(
    cmd
      .command('del <address>')
      .description('delete a mailbox and its mail')
      .option('--keep-files', 'keep its home and Maildir'),
  ).action(
    action('user del', (address: string, o: DirOpts & { keepFiles?: boolean }) =>
      withDirectory(o, async (ctx) => {
        await perform(ctx, SYSTEM, { op: 'mailbox.remove', address, keepFiles: o.keepFiles === true });
        if (o.json) printJson({ deleted: address.toLowerCase() });
        else process.stdout.write(`deleted ${address.toLowerCase()}\n`);
      }),
    ),
  );
  registerMove(cmd);
  dirOptions(withPw(cmd.command('passwd <address>').description("set a mailbox's password"))).action(
    action('user passwd', (address: string, o: DirOpts & PwOpts) =>
      withDirectory(o, async (ctx) => {
        const [local, domain] = parseAddress(address);
        const pw = (await passwordFrom(o, false)) ?? '';
        await perform(ctx, SYSTEM, { op: 'mailbox.password', address, password: pw });
        const m = await ctx.dir.getMailbox((await ctx.dir.resolveDomain(domain))?.name ?? domain, local);
        if (!m) throw usageError(`no mailbox ${local}@${domain}`);
        if (o.json) printJson(mailboxJson(m));
        else process.stdout.write(`password of ${m.local}@${m.domain} changed\n`);
      }),
    ),
  );
  dirOptions(
    cmd
      .command('mod <address>')
      .description('change a mailbox')
      .option('--name <real name>', "the owner's name")
      .option('--quota <size>', 'quota in bytes (none: no quota)')
      .option('--quota-messages <n>', 'quota in messages (none)')
      .option('--flag <flag>', 'set a flag (repeatable)', collect, [] as string[])
      .option('--unflag <flag>', 'clear a flag (repeatable)', collect, [] as string[])
      .option('--forward <address>', 'forward its mail (repeatable; replaces the list)', collect, [] as string[])
      .option('--no-forward', 'stop forwarding')
      .option('--keep-copy', 'when forwarding, also keep a copy in the mailbox')
      .option('--no-keep-copy', 'when forwarding, keep no copy')
      .option('--spam-folder <name>', 'file mail quail filter tagged as spam into this Maildir++ folder (e.g. Junk)')
      .option('--no-spam-folder', 'leave tagged spam in the inbox'),
  ).action(
    action('user mod', (address: string, o: DirOpts & ModOpts & { forward: string[] | false }) =>
      withDirectory(o, async (ctx) => {
        const { root, dir } = ctx;
        if (o.spamFolder !== undefined)
          await perform(ctx, SYSTEM, {
            op: 'mailbox.spam',
            address,
            folder: o.spamFolder === false ? null : o.spamFolder,
          });
        const [local, domain] = parseAddress(address);
        const cur = await dir.getMailbox(domain, local);
        if (!cur) throw usageError(`no mailbox ${local}@${domain}`);
        const flags = new Set<MailboxFlag>(cur.flags);
        for (const f of o.flag) flags.add(parseFlag(f));
        for (const f of o.unflag) flags.delete(parseFlag(f));
        const patch: MailboxPatch = {
          flags: [...flags],
          ...(o.name === undefined ? {} : { realName: o.name }),
          ...(o.quota === undefined ? {} : { quotaBytes: parseSize(o.quota, '--quota') }),
          ...(o.quotaMessages === undefined ? {} : { quotaMessages: parseCount(o.quotaMessages, '--quota-messages') }),
          ...(o.forward === false ? { forward: [] } : o.forward.length > 0 ? { forward: o.forward } : {}),
          ...(o.keepCopy === undefined ? {} : { keepCopy: o.keepCopy }),
        };
        const m = await dir.updateMailbox(domain, local, patch);
        if (o.json) printJson(mailboxJson(m));
        else process.stdout.write(render(m, root));
      }),
    ),
  );
  dirOptions(cmd.command('info <address>').description('show a mailbox')).action(
    action('user info', (address: string, o: DirOpts) =>
      withDirectory(o, async ({ root, dir }) => {
        const [local, domain] = parseAddress(address);
        const d = await dir.resolveDomain(domain);
        const m = d ? await dir.getMailbox(d.name, local) : null;
        if (!m) throw usageError(`no mailbox ${local}@${domain}`);
        if (o.json) printJson(mailboxJson(m));
        else process.stdout.write(render(m, root));
      }),
    ),
  );
  dirOptions(cmd.command('list <domain>').description("list a domain's mailboxes")).action(
    action('user list', (domain: string, o: DirOpts) =>
      withDirectory(o, async ({ dir }) => {
        const d = await dir.resolveDomain(domain);
        if (!d) throw usageError(`no domain ${domain} in the directory`);
        const all = await dir.listMailboxes(d.name);
        if (o.json) printJson(all.map(mailboxJson));
        else
          for (const m of all) process.stdout.write(`${m.local}@${m.domain}${m.realName ? ` (${m.realName})` : ''}\n`);
      }),
    ),
  );
}
