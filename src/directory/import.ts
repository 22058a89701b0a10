// Importing a vpopmail domains/ tree (vpasswd, .qmail-* aliases, quotas, limits, mail) into the directory.
import { cpSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseVdeliverLine } from '../vdeliver/index.js';
import { makeMailboxHome } from './sync.js';
import { addAliasDomain, createDomain, type Ctx } from './admin.js';
import { DirectoryError, domainName, localPart, parsePolicy } from './names.js';
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
    if (/^\d+$/.test(name) && !existsSync(join(p, 'vpasswd'))) {
      const inner = plan(p, rep);
      domains.push(...inner.domains);
      aliasDomains.push(...inner.aliasDomains);
      continue;
    }
    const vpasswd = join(p, 'vpasswd');
    if (!existsSync(vpasswd)) {
      rep.skipped.push({
        what: `domain ${name}`,
        why: 'no vpasswd file (a SQL backend? export it to vpasswd with vconvert first)',
      });
      continue;
    }
    const users: VpasswdEntry[] = [];
    for (const line of readFileSync(vpasswd, 'latin1').split('\n')) {
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
      const lines = readFileSync(join(p, f), 'latin1')
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
    const lim = join(p, '.qmailadmin-limits');
    domains.push({
      name,
      dir: p,
      users,
      aliases,
      policy,
      limits: existsSync(lim) ? parseLimits(readFileSync(lim, 'latin1')) : {},
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
          const src = join(userDir(d, e), 'Maildir');
          if (existsSync(src)) {
            cpSync(src, join(ctx.root, m.home, 'Maildir'), { recursive: true, preserveTimestamps: true });
            if (process.getuid?.() === 0 && dom)
              spawnSync('chown', ['-R', `${dom.account.uid}:${dom.account.gid}`, join(ctx.root, m.home)]);
          }
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
