// vpopmail's command names (vadddomain, vadduser, valias, ...) as thin entries over the directory, with their option letters.
import { randomInt } from 'node:crypto';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  addAliasDomain,
  createDomain,
  createMailbox,
  deliveryAccount,
  DirectoryError,
  domainName,
  formatPolicy,
  hashPassword,
  parseAddress,
  removeDomain,
  removeMailbox,
  type Ctx,
  type Mailbox,
  type MailboxFlag,
  type MailboxPatch,
  type UnknownPolicy,
} from '../directory/index.js';
import { scanUsage } from '../maildir/index.js';
import { action, addRootOption, usageError } from './common.js';
import { parseSize, withDirectory, type DirOpts } from './directory.js';
import { passwordFrom } from './user.js';

const ALNUM = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** vpopmail's `-r[len]`: a random password of len (default 8) characters. */
export function randomPassword(len = 8): string {
  let s = '';
  for (let i = 0; i < len; i++) s += ALNUM[randomInt(ALNUM.length)] ?? 'x';
  return s;
}

/** `-r` alone is true, `-r12` is '12'. */
const randomLen = (r: string | boolean | undefined): number | null => {
  if (r === undefined || r === false) return null;
  if (r === true) return 8;
  if (!/^\d+$/.test(r) || Number(r) < 1) throw usageError(`-r${r}: give a length in characters, e.g. -r12`);
  return Number(r);
};

/**
 * `-r [len]` takes the next word when it is not an option, so `vpasswd -r joe@x` gives r = 'joe@x': such a value
 * is put back in front of the positional arguments and -r becomes plain -r.
 */
function unR(o: V, args: ReadonlyArray<string | undefined>): string[] {
  const given = args.filter((a): a is string => a !== undefined);
  const r = o['r'];
  if (typeof r === 'string' && !/^\d+$/.test(r)) {
    o['r'] = true;
    return [r, ...given];
  }
  return given;
}

/** vpopmail quotas: bytes, `NOQUOTA`, sizes like `50M`, or Maildir++ `NNNS,MMMC`. */
export function parseVpopQuota(text: string): { bytes: number | null; messages: number | null } {
  const t = text.trim();
  if (/^noquota$/i.test(t)) return { bytes: null, messages: null };
  const mpp = /^(?:(\d+)S)?,?(?:(\d+)C)?$/i.exec(t);
  if (mpp && (mpp[1] !== undefined || mpp[2] !== undefined)) {
    return {
      bytes: mpp[1] === undefined ? null : Number(mpp[1]),
      messages: mpp[2] === undefined ? null : Number(mpp[2]),
    };
  }
  return { bytes: parseSize(t, 'quota'), messages: null };
}

const vpopQuotaText = (m: Mailbox): string =>
  m.quotaBytes === null && m.quotaMessages === null
    ? 'NOQUOTA'
    : [m.quotaBytes === null ? '' : `${m.quotaBytes}S`, m.quotaMessages === null ? '' : `${m.quotaMessages}C`]
        .filter(Boolean)
        .join(',');

/** The password given as an argument, else -r (printed), else the usual --password-stdin / prompt. */
async function passwordArg(arg: string | undefined, r: string | boolean | undefined, who: string): Promise<string> {
  const len = randomLen(r);
  if (len !== null) {
    const pw = randomPassword(len);
    process.stdout.write(`Random password for ${who}: ${pw}\n`);
    return pw;
  }
  if (arg !== undefined) return arg;
  const pw = await passwordFrom({}, false);
  return pw ?? '';
}

/** vmoduser's flag letters → quail's flags. */
const FLAG_LETTERS: ReadonlyArray<[string, MailboxFlag, string]> = [
  ['d', 'no-password-change', 'do not allow the user to change the password'],
  ['p', 'no-pop', 'disable POP access'],
  ['s', 'no-smtp-auth', 'disable SMTP AUTH'],
  ['w', 'no-webmail', 'disable webmail access'],
  ['i', 'no-imap', 'disable IMAP access'],
  ['b', 'bounce-all', 'bounce all mail'],
  ['r', 'no-relay', 'disable relaying (roaming users)'],
  ['u', 'no-dialup', 'set the no-dialup flag'],
  ['a', 'domain-admin', 'grant domain (qmailadmin) administrator privileges'],
  ['S', 'system-admin', 'grant system administrator privileges'],
];

type V = DirOpts & Record<string, string | boolean | undefined>;

/** The shared options: --root and --directory (vpopmail's -v prints our version line). */
function entry(program: Command, name: string, args: string, what: string): Command {
  return addRootOption(program.command(`${name} ${args}`.trim()).description(`${what} (vpopmail's ${name})`))
    .option('--directory <url>', 'directory database (default: control/directory, else ROOT/directory.sqlite)')
    .option('-v', 'print the version and go on');
}

const version = (o: V): void => {
  if (o['v'] === true) process.stdout.write('version: quail (vpopmail-compatible entry)\n');
};

async function setHash(ctx: Ctx, address: string, hash: string): Promise<Mailbox> {
  const [local, domain] = parseAddress(address);
  return ctx.dir.updateMailbox(domain, local, { passwordHash: hash });
}

/** The mailboxes named by EMAIL, or every mailbox of DOMAIN (vmoduser, vsetuserquota). */
async function targets(ctx: Ctx, what: string): Promise<Mailbox[]> {
  if (what.includes('@')) {
    const [local, domain] = parseAddress(what);
    const m = await ctx.dir.getMailbox(domain, local);
    if (!m) throw new DirectoryError(`no such user ${local}@${domain}`);
    return [m];
  }
  const d = await ctx.dir.resolveDomain(domainName(what));
  if (!d) throw new DirectoryError(`no domain ${what} in the directory`);
  return ctx.dir.listMailboxes(d.name);
}

function domainEntries(program: Command): void {
  entry(program, 'vadddomain', '[domain] [password]', 'add a domain and its postmaster mailbox')
    .option('-q <quota>', 'quota of the postmaster mailbox (bytes, NOQUOTA, NNNS,MMMC)')
    .option('-b', 'bounce mail for unknown users (the default)')
    .option('-e <address>', 'forward unknown users to this address; without @: deliver to that mailbox')
    .option('-u <user>', 'the unix account mail is delivered as')
    .option('-d <dir>', 'not supported: quail keeps domains under ROOT/domains')
    .option('-i <uid>', 'not supported: give the account with -u')
    .option('-g <gid>', 'not supported: give the account with -u')
    .option('-O', 'accepted and ignored (quail has no bulk-add optimisation to turn on)')
    .option('-r [len]', 'random postmaster password (printed)')
    .action(
      action('vadddomain', async (a1: string | undefined, a2: string | undefined, o: V) => {
        version(o);
        const [name, pw] = unR(o, [a1, a2]);
        if (name === undefined) throw usageError('usage: vadddomain [options] domain [postmaster password]');
        for (const k of ['d', 'i', 'g'])
          if (o[k] !== undefined)
            throw usageError(
              `-${k} is not supported: quail keeps domains under ROOT/domains and takes the account from -u USER`,
            );
        const e = o['e'];
        const policy: UnknownPolicy | undefined =
          typeof e === 'string'
            ? e.includes('@')
              ? { kind: 'forward', address: e }
              : { kind: 'mailbox', local: e }
            : undefined;
        const password = await passwordArg(pw, o['r'], `postmaster@${name.toLowerCase()}`);
        await withDirectory(o, async (ctx) => {
          const d = await createDomain(ctx, {
            name,
            account: deliveryAccount(ctx.root, typeof o['u'] === 'string' ? o['u'] : undefined),
            ...(policy ? { policy } : {}),
          });
          const q = typeof o['q'] === 'string' ? parseVpopQuota(o['q']) : null;
          await createMailbox(ctx, {
            address: `postmaster@${d.name}`,
            password,
            realName: 'Postmaster',
            flags: ['domain-admin'],
            ...(q ? { quotaBytes: q.bytes, quotaMessages: q.messages } : {}),
          });
        });
      }),
    );
  entry(program, 'vdeldomain', '<domain>', 'delete a domain, its mailboxes and mail')
    .option('-f', "accepted (vpopmail's force)")
    .action(
      action('vdeldomain', async (name: string, o: V) => {
        version(o);
        await withDirectory(o, (ctx) => removeDomain(ctx, name, true));
      }),
    );
  entry(
    program,
    'vaddaliasdomain',
    '<real> <alias>',
    'make ALIAS another name for REAL (the two may be swapped)',
  ).action(
    action('vaddaliasdomain', async (real: string, alias: string, o: V) => {
      version(o);
      await withDirectory(o, async (ctx) => {
        // vpopmail accepts the arguments either way round: the one already in the directory is the real domain.
        const swap =
          (await ctx.dir.getDomain(domainName(real))) === null && (await ctx.dir.getDomain(domainName(alias))) !== null;
        await addAliasDomain(ctx, swap ? real : alias, swap ? alias : real);
      });
    }),
  );
  entry(program, 'vdominfo', '[domain]', 'show a domain (all domains without an argument)')
    .option('-a', 'all fields (default)')
    .option('-n', 'domain name')
    .option('-u', 'uid')
    .option('-g', 'gid')
    .option('-d', 'domain directory')
    .option('-t', 'total users')
    .option('-r', 'real domain')
    .action(
      action('vdominfo', async (name: string | undefined, o: V) => {
        version(o);
        await withDirectory(o, async (ctx) => {
          const doms =
            name === undefined ? await ctx.dir.listDomains() : [await ctx.dir.resolveDomain(domainName(name))];
          const picked = ['n', 'u', 'g', 'd', 't', 'r'].filter((k) => o[k] === true);
          const all = picked.length === 0 || o['a'] === true;
          for (const d of doms) {
            if (!d) throw new DirectoryError(`domain ${name ?? ''} does not exist`);
            const shown = name !== undefined && name.toLowerCase() !== d.name ? name.toLowerCase() : d.name;
            const lines: Array<[string, string, string]> = [
              ['n', 'domain', shown],
              ['r', 'real domain', d.name],
              ['u', 'uid', String(d.account.uid)],
              ['g', 'gid', String(d.account.gid)],
              ['d', 'dir', join(ctx.root, 'domains', d.name)],
              ['t', 'users', String(await ctx.dir.countMailboxes(d.name))],
            ];
            for (const [k, label, value] of lines) {
              if (all) process.stdout.write(`${label}: ${value}\n`);
              else if (picked.includes(k)) process.stdout.write(`${value}\n`);
            }
            if (all)
              process.stdout.write(
                `policy: ${formatPolicy(d.policy)}\n${d.aliases.map((a) => `alias: ${a}\n`).join('')}\n`,
              );
          }
        });
      }),
    );
}

function userEntries(program: Command): void {
  entry(program, 'vadduser', '[address] [password]', 'add a mailbox')
    .option('-q <quota>', 'quota (bytes, NOQUOTA, 50M, NNNS,MMMC)')
    .option('-c <comment>', 'the real name (gecos)')
    .option('-e <hash>', "an already encrypted password (crypt $1$, $5$, $6$, or quail's $scrypt$)")
    .option('-n', 'no password (the mailbox cannot log in)')
    .option('-r [len]', 'random password (printed)')
    .option('-s', 'accepted and ignored (no vpasswd.cdb to rebuild)')
    .option('-a', 'accepted and ignored (APOP)')
    .action(
      action('vadduser', async (a1: string | undefined, a2: string | undefined, o: V) => {
        version(o);
        const [address, pw] = unR(o, [a1, a2]);
        if (address === undefined) throw usageError('usage: vadduser [options] email_address [password]');
        const hash = typeof o['e'] === 'string' ? o['e'] : null;
        const password = hash !== null || o['n'] === true ? null : await passwordArg(pw, o['r'], address.toLowerCase());
        const q = typeof o['q'] === 'string' ? parseVpopQuota(o['q']) : null;
        await withDirectory(o, async (ctx) => {
          await createMailbox(ctx, {
            address,
            password,
            ...(typeof o['c'] === 'string' ? { realName: o['c'] } : {}),
            ...(q ? { quotaBytes: q.bytes, quotaMessages: q.messages } : {}),
          });
          if (hash !== null) await setHash(ctx, address, hash);
        });
      }),
    );
  entry(program, 'vdeluser', '<address>', 'delete a mailbox and its mail').action(
    action('vdeluser', async (address: string, o: V) => {
      version(o);
      await withDirectory(o, (ctx) => removeMailbox(ctx, address, true));
    }),
  );
  entry(program, 'vpasswd', '[address] [password]', "set a mailbox's password")
    .option('-r [len]', 'random password (printed)')
    .action(
      action('vpasswd', async (a1: string | undefined, a2: string | undefined, o: V) => {
        version(o);
        const [address, pw] = unR(o, [a1, a2]);
        if (address === undefined) throw usageError('usage: vpasswd [options] email_address [password]');
        const password = await passwordArg(pw, o['r'], address.toLowerCase());
        await withDirectory(o, async (ctx) => void (await setHash(ctx, address, await hashPassword(password))));
      }),
    );
  const mod = entry(program, 'vmoduser', '<address-or-domain>', 'change a mailbox (every mailbox of a domain)')
    .option('-n', 'accepted and ignored (no vpasswd.cdb)')
    .option('-q <quota>', 'quota')
    .option('-c <comment>', 'real name')
    .option('-e <hash>', 'encrypted password')
    .option('-C <password>', 'clear-text password (stored hashed)')
    .option('-x', 'clear all flags first');
  for (const [letter, , what] of FLAG_LETTERS) mod.option(`-${letter}`, what);
  mod.action(
    action('vmoduser', async (what: string, o: V) => {
      version(o);
      const q = typeof o['q'] === 'string' ? parseVpopQuota(o['q']) : null;
      const hash = typeof o['e'] === 'string' ? o['e'] : typeof o['C'] === 'string' ? await hashPassword(o['C']) : null;
      await withDirectory(o, async (ctx) => {
        for (const m of await targets(ctx, what)) {
          const flags = new Set<MailboxFlag>(o['x'] === true ? [] : m.flags);
          for (const [letter, flag] of FLAG_LETTERS) if (o[letter] === true) flags.add(flag);
          const patch: MailboxPatch = {
            flags: [...flags],
            ...(q ? { quotaBytes: q.bytes, quotaMessages: q.messages } : {}),
            ...(typeof o['c'] === 'string' ? { realName: o['c'] } : {}),
            ...(hash !== null ? { passwordHash: hash } : {}),
          };
          await ctx.dir.updateMailbox(m.domain, m.local, patch);
        }
      });
    }),
  );
  entry(
    program,
    'vsetuserquota',
    '<address-or-domain> <quota>',
    'set the quota of a mailbox (or every mailbox of a domain)',
  ).action(
    action('vsetuserquota', async (what: string, quota: string, o: V) => {
      version(o);
      const q = parseVpopQuota(quota);
      await withDirectory(o, async (ctx) => {
        for (const m of await targets(ctx, what))
          await ctx.dir.updateMailbox(m.domain, m.local, { quotaBytes: q.bytes, quotaMessages: q.messages });
      });
    }),
  );
  const info = entry(
    program,
    'vuserinfo',
    '[address]',
    'show a mailbox (or with -D, every mailbox of a domain)',
  ).option('-D <domain>', 'all users of this domain');
  for (const [l, w] of [
    ['a', 'all fields (default)'],
    ['n', 'name'],
    ['p', 'crypted password'],
    ['u', 'uid'],
    ['g', 'gid'],
    ['c', 'comment'],
    ['d', 'directory'],
    ['q', 'quota'],
    ['Q', 'quota usage'],
    ['l', 'last authentication time'],
  ] as const)
    info.option(`-${l}`, w);
  info.action(
    action('vuserinfo', async (address: string | undefined, o: V) => {
      version(o);
      await withDirectory(o, async (ctx) => {
        const list =
          typeof o['D'] === 'string'
            ? await targets(ctx, o['D'])
            : address !== undefined
              ? await targets(ctx, address)
              : ((): never => {
                  throw usageError('give an address, or -D DOMAIN');
                })();
        for (const m of list) process.stdout.write(await userInfo(ctx, m, o));
      });
    }),
  );
}

async function userInfo(ctx: Ctx, m: Mailbox, o: V): Promise<string> {
  const d = await ctx.dir.getDomain(m.domain);
  const dir = join(ctx.root, m.home);
  const usage = (): string => {
    const u = scanUsage(join(dir, 'Maildir'));
    return m.quotaBytes ? `${Math.floor((u.bytes * 100) / m.quotaBytes)}%` : `${u.bytes} bytes, ${u.messages} messages`;
  };
  const fields: Array<[string, string, () => string]> = [
    ['n', 'name', () => m.local],
    ['p', 'passwd', () => m.passwordHash],
    ['u', 'uid', () => String(d?.account.uid ?? '')],
    ['g', 'gid', () => String(d?.account.gid ?? '')],
    ['c', 'gecos', () => m.realName],
    ['d', 'dir', () => dir],
    ['q', 'quota', () => vpopQuotaText(m)],
    ['Q', 'usage', usage],
    ['l', 'last auth', () => m.lastLogin?.toISOString() ?? 'Never logged in'],
  ];
  const picked = fields.filter(([k]) => o[k] === true);
  if (picked.length > 0 && o['a'] !== true) return picked.map(([, , f]) => `${f()}\n`).join('');
  return `${fields.map(([, label, f]) => `${`${label}:`.padEnd(11)}${f()}\n`).join('')}flags:     ${m.flags.join(' ') || '-'}\n\n`;
}

function aliasEntry(program: Command): void {
  entry(program, 'valias', '<address-or-domain>', 'show, insert or delete alias lines')
    .option('-s', 'show aliases (the default; a domain shows all)')
    .option('-n', 'show alias names only (a domain)')
    .option('-d', 'delete the alias')
    .option('-i <line>', 'insert an alias line (address, &address, /Maildir/ or |program)')
    .action(
      action('valias', async (what: string, o: V) => {
        version(o);
        await withDirectory(o, async (ctx) => {
          if (typeof o['i'] === 'string' || o['d'] === true) {
            const [local, domain] = parseAddress(what);
            if (typeof o['i'] === 'string') {
              const cur = await ctx.dir.getAlias(domain, local);
              if (cur?.targets.includes(o['i']))
                throw new DirectoryError(`alias ${local}@${domain} -> ${o['i']} already exists`);
              await ctx.dir.addAlias(domain, local, [o['i']]);
            } else if (!(await ctx.dir.deleteAlias(domain, local)))
              throw new DirectoryError(`no alias ${local}@${domain}`);
            return;
          }
          const all = what.includes('@')
            ? [await ctx.dir.getAlias(parseAddress(what)[1], parseAddress(what)[0])].filter((a) => a !== null)
            : await ctx.dir.listAliases(domainName(what));
          for (const a of all) {
            if (o['n'] === true) process.stdout.write(`${a.local}@${a.domain}\n`);
            else for (const t of a.targets) process.stdout.write(`${a.local}@${a.domain} -> ${t}\n`);
          }
        });
      }),
    );
}

export function register(program: Command): void {
  domainEntries(program);
  userEntries(program);
  aliasEntry(program);
}
