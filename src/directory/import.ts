// Importing a vpopmail domains/ tree (vpasswd, .qmail-* aliases, quotas, limits, mail) into the directory.
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseVdeliverLine } from '../vdeliver/index.js';
import { makeMailboxHome } from './sync.js';
import { addAliasDomain, createDomain, type Ctx } from './admin.js';
import { DirectoryError, domainName, localPart, parsePolicy } from './names.js';
import { copyMaildir, inside, readTreeFile, SMALL_FILE_MAX, VPASSWD_MAX } from './importtree.js';
import { canVerify } from './password.js';
import type { DeliveryAccount, DomainLimits, MailboxFlag, UnknownPolicy } from './types.js';

/** vpopmail's flag bits in the vpasswd gid field (vpopmail.h) and quail's names for them. */
const VPOP_BITS: ReadonlyArray<[number, MailboxFlag]> = [
  [0x01, 'no-password-change'],
  [0x02, 'no-pop'],
  [0x04, 'no-webmail'],
  [0x08, 'no-imap'],
  [0x10, 'bounce-all'],
  [0x20, 'no-relay'],
  [0x40, 'no-dialup'],
  [0x800, 'no-smtp-auth'],
  [0x1000, 'domain-admin'],
  [0x10000, 'system-admin'],
];

const vpopFlags = (bits: number): MailboxFlag[] => VPOP_BITS.filter(([b]) => (bits & b) !== 0).map(([, f]) => f);

export interface VpasswdEntry {
  readonly local: string;
  readonly hash: string;
  readonly flags: readonly MailboxFlag[];
  readonly gecos: string;
  readonly dir: string;
  readonly quotaBytes: number | null;
  readonly quotaMessages: number | null;
}

/** One vpasswd line `name:crypt:uid:gid(flags):gecos:dir:quota[:clear]`; null for blank/comment lines. */
export function parseVpasswdLine(line: string): VpasswdEntry | null {
  if (line.trim() === '' || line.startsWith('#')) return null;
  const f = line.split(':');
  if (f.length < 7)
    throw new DirectoryError(`vpasswd line has ${f.length} fields, wants 7 or 8: ${JSON.stringify(line)}`);
  const q = (f[6] ?? '').trim();
  let quotaBytes: number | null = null;
  let quotaMessages: number | null = null;
  if (q !== '' && !/^noquota$/i.test(q)) {
    const m = /^(\d+)S?(?:,(\d+)C)?$/i.exec(q);
    if (!m)
      throw new DirectoryError(
        `vpasswd quota ${JSON.stringify(q)} of ${f[0] ?? ''} is not NOQUOTA, bytes or NNNS,MMMC`,
      );
    quotaBytes = Number(m[1]);
    quotaMessages = m[2] === undefined ? null : Number(m[2]);
  }
  return {
    local: f[0] ?? '',
    hash: f[1] ?? '',
    flags: vpopFlags(Number(f[3] ?? 0) || 0),
    gecos: f[4] ?? '',
    dir: f[5] ?? '',
    quotaBytes,
    quotaMessages,
  };
}

/** The policy a vpopmail `.qmail-default` line says; a Maildir path means that mailbox (vpopmail's catch-all). */
export function vpopPolicy(line: string): UnknownPolicy | null {
  const v = parseVdeliverLine(line);
  if (!v) return null;
  const p = v.policy;
  if (p === '' || p === 'bounce-no-mailbox') return { kind: 'bounce-no-mailbox' };
  if (p === 'delete') return { kind: 'delete' };
  if (p.startsWith('/')) return { kind: 'mailbox', local: basename(p.replace(/\/+$/, '').replace(/\/Maildir$/, '')) };
  return parsePolicy(p);
}

/** `.qmailadmin-limits` (`maxpopaccounts: 100`, -1 = unlimited). */
function parseLimits(text: string): Partial<DomainLimits> {
  const out: { -readonly [K in keyof DomainLimits]?: DomainLimits[K] } = {};
  for (const l of text.split('\n')) {
    const m = /^\s*(\w+)\s*:\s*(-?\d+)\s*$/.exec(l);
    if (!m) continue;
    const n = Number(m[2]) < 0 ? null : Number(m[2]);
    if (m[1] === 'maxpopaccounts') out.maxMailboxes = n;
    else if (m[1] === 'maxaliases') out.maxAliases = n;
    else if (m[1] === 'maxforwards') out.maxForwards = n;
  }
  return out;
}

export interface ImportReport {
  readonly imported: string[];
  readonly skipped: Array<{ readonly what: string; readonly why: string }>;
}

export interface VpopImportOptions {
  readonly dryRun: boolean;
  readonly account: DeliveryAccount;
  /** Called once per unit of work (a domain, a mailbox, an alias) with the totals, for a progress bar. */
  readonly progress?: (done: number, total: number) => void;
}

interface DomainPlan {
  readonly name: string;
  readonly dir: string;
  readonly users: VpasswdEntry[];
  readonly aliases: Array<{ local: string; targets: string[] }>;
  readonly policy: UnknownPolicy | null;
  readonly limits: Partial<DomainLimits>;
}

/** Reads DIR (vpopmail's domains/) without changing anything. */
function plan(dir: string, rep: ImportReport): { domains: DomainPlan[]; aliasDomains: Array<[string, string]> } {
  const domains: DomainPlan[] = [];
  const aliasDomains: Array<[string, string]> = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (lstatSync(p).isSymbolicLink()) {
      aliasDomains.push([name, basename(resolve(dir, readlinkSync(p)))]);
      continue;
    }
    if (!statSync(p).isDirectory()) continue;
    // vpopmail may hash domains into numbered subdirectories: descend into a digit-named one.
    if (/^\d+$/.test(name) && statSync(join(p, 'vpasswd'), { throwIfNoEntry: false }) === undefined) {
      const inner = plan(p, rep);
      domains.push(...inner.domains);
      aliasDomains.push(...inner.aliasDomains);
      continue;
    }
    const vpasswd = readTreeFile(p, join(p, 'vpasswd'), VPASSWD_MAX);
    if (vpasswd === undefined || 'why' in vpasswd) {
      rep.skipped.push({
        what: `domain ${name}`,
        why:
          vpasswd === undefined
            ? 'no vpasswd file (a SQL backend? export it to vpasswd with vconvert first)'
            : `its vpasswd was not read: ${vpasswd.why}`,
      });
      continue;
    }
    const users: VpasswdEntry[] = [];
    for (const line of vpasswd.text.split('\n')) {
      try {
        const e = parseVpasswdLine(line);
        if (e) users.push(e);
      } catch (err) {
        rep.skipped.push({ what: `${name} vpasswd line`, why: (err as Error).message });
      }
    }
    const aliases: Array<{ local: string; targets: string[] }> = [];
    let policy: UnknownPolicy | null = null;
    for (const f of readdirSync(p).sort()) {
      if (!f.startsWith('.qmail-')) continue;
      const file = readTreeFile(p, join(p, f), SMALL_FILE_MAX);
      if (file === undefined || 'why' in file) {
        rep.skipped.push({ what: `${name}/${f}`, why: `not read: ${file?.why ?? 'gone'}` });
        continue;
      }
      const lines = file.text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#'));
      if (f === '.qmail-default') {
        policy = lines.length === 1 ? vpopPolicy(lines[0] ?? '') : null;
        if (policy === null)
          rep.skipped.push({
            what: `${name}/.qmail-default`,
            why: 'not a single vdelivermail line; domain keeps bounce-no-mailbox',
          });
        continue;
      }
      // qmail: `:` in a .qmail file name stands for `.` in the address.
      const local = f.slice('.qmail-'.length).replace(/:/g, '.');
      aliases.push({ local, targets: lines });
    }
    const lim = readTreeFile(p, join(p, '.qmailadmin-limits'), SMALL_FILE_MAX);
    if (lim !== undefined && 'why' in lim)
      rep.skipped.push({ what: `${name}/.qmailadmin-limits`, why: `not read: ${lim.why}` });
    domains.push({
      name,
      dir: p,
      users,
      aliases,
      policy,
      limits: lim !== undefined && 'text' in lim ? parseLimits(lim.text) : {},
    });
  }
  return { domains, aliasDomains };
}

/** Where a vpasswd dir field points inside the tree being imported (its absolute path may be another machine's). */
function userDir(d: DomainPlan, e: VpasswdEntry): string {
  const marker = `/${d.name}/`;
  const at = e.dir.lastIndexOf(marker);
  return at >= 0 ? join(d.dir, e.dir.slice(at + marker.length)) : join(d.dir, e.local);
}

/**
 * Copies the entry's Maildir into the new mailbox's home. The Maildir must lie inside the domain's directory (a
 * vpasswd dir of `.../dom/../../other` or a symlinked home would copy mail of this host's other mailboxes); symlinks
 * and special files in it are left out. What is not copied is reported; the mailbox stays imported.
 */
function copyMail(d: DomainPlan, e: VpasswdEntry, home: string, what: string, rep: ImportReport): void {
  const src = inside(d.dir, join(userDir(d, e), 'Maildir'));
  if (src === undefined) return;
  if ('why' in src) {
    rep.skipped.push({ what, why: `its Maildir was not copied: ${src.why}` });
    return;
  }
  try {
    for (const l of copyMaildir(src.path, join(home, 'Maildir')))
      rep.skipped.push({ what: `${what}: Maildir/${l.file}`, why: l.why });
  } catch (err) {
    rep.skipped.push({ what, why: `its Maildir was not copied whole: ${(err as Error).message}` });
  }
}

/** Imports the tree; with dryRun only the report is made. Existing domains and mailboxes are skipped, never changed. */
export async function importVpopmail(ctx: Ctx, dir: string, o: VpopImportOptions): Promise<ImportReport> {
  const rep: ImportReport = { imported: [], skipped: [] };
  const { domains, aliasDomains } = plan(dir, rep);
  const total = domains.reduce((n, d) => n + 1 + d.users.length + d.aliases.length, 0) + aliasDomains.length;
  let done = 0;
  const tick = (): void => o.progress?.(++done, total);
  for (const d of domains) {
    let name: string;
    try {
      name = domainName(d.name);
    } catch (err) {
      rep.skipped.push({ what: `domain ${d.name}`, why: (err as Error).message });
      continue;
    }
    const exists = (await ctx.dir.getDomain(name)) !== null;
    tick();
    if (exists) {
      rep.skipped.push({ what: `domain ${name}`, why: 'already in the directory (its mailboxes are still added)' });
    } else {
      if (!o.dryRun)
        await createDomain(ctx, {
          name,
          account: o.account,
          limits: d.limits,
          ...(d.policy ? { policy: d.policy } : {}),
        });
      rep.imported.push(`domain ${name}`);
    }
    for (const e of d.users) {
      tick();
      const what = `mailbox ${e.local}@${name}`;
      try {
        const local = localPart(e.local);
        if (!o.dryRun || exists) {
          if (await ctx.dir.getMailbox(name, local)) throw new DirectoryError('already in the directory');
        }
        if (!o.dryRun) {
          const m = await ctx.dir.addMailbox({
            domain: name,
            local,
            passwordHash: e.hash,
            realName: e.gecos,
            quotaBytes: e.quotaBytes,
            quotaMessages: e.quotaMessages,
            flags: e.flags,
          });
          const dom = await ctx.dir.getDomain(name);
          if (dom) makeMailboxHome(ctx.root, dom, m);
          copyMail(d, e, join(ctx.root, m.home), `mail of ${e.local}@${name}`, rep);
          if (process.getuid?.() === 0 && dom)
            spawnSync('chown', ['-R', `${dom.account.uid}:${dom.account.gid}`, join(ctx.root, m.home)]);
        }
        rep.imported.push(
          `${what}${e.hash === '' || canVerify(e.hash) ? '' : ' (password hash of a scheme quail cannot verify: reset it)'}`,
        );
      } catch (err) {
        rep.skipped.push({ what, why: (err as Error).message });
      }
    }
    for (const a of d.aliases) {
      tick();
      const what = `alias ${a.local}@${name}`;
      try {
        if (!o.dryRun) await ctx.dir.addAlias(name, a.local, a.targets);
        rep.imported.push(what);
      } catch (err) {
        rep.skipped.push({ what, why: (err as Error).message });
      }
    }
  }
  for (const [alias, real] of aliasDomains) {
    tick();
    try {
      if (!o.dryRun) await addAliasDomain(ctx, alias, real);
      rep.imported.push(`alias domain ${alias} -> ${real}`);
    } catch (err) {
      rep.skipped.push({ what: `alias domain ${alias}`, why: (err as Error).message });
    }
  }
  return rep;
}
