// The changes a principal may ask for, as typed requests: checked by policy.ts, then done by the directory's own
// admin functions (the ones the CLI always used), so the web and the command line change the same things the same way.
import {
  createMailbox,
  DirectoryError,
  changeDomain,
  hashPassword,
  parseAddress,
  parsePolicy,
  removeMailbox,
  type Ctx,
  type MailboxFlag,
  type Vacation,
} from '../directory/index.js';
import { isListChange, performListChange, type ListChange } from './lists.js';
import { AccessDenied, authorize, principalOf, type Need, type Principal } from './policy.js';

export type Change =
  | {
      readonly op: 'mailbox.add';
      readonly address: string;
      /** null: no password (the mailbox cannot log in). */
      readonly password: string | null;
      readonly realName?: string;
      readonly quotaBytes?: number | null;
      readonly quotaMessages?: number | null;
      readonly flags?: readonly MailboxFlag[];
      /** The home office (issue 16); default: the only office. */
      readonly office?: string;
    }
  | { readonly op: 'mailbox.remove'; readonly address: string; readonly keepFiles?: boolean }
  | { readonly op: 'mailbox.password'; readonly address: string; readonly password: string }
  | { readonly op: 'mailbox.quota'; readonly address: string; readonly quotaBytes: number | null }
  | {
      readonly op: 'mailbox.forward';
      readonly address: string;
      readonly targets: readonly string[];
      readonly keepCopy: boolean;
    }
  /** Which services the mailbox may log in to (the no-pop, no-imap, no-smtp-auth flags cleared or set). */
  | {
      readonly op: 'mailbox.services';
      readonly address: string;
      readonly pop: boolean;
      readonly imap: boolean;
      readonly smtp: boolean;
    }
  /** The vacation reply (RFC 3834; null: off): the mailbox itself or an administrator of its domain. */
  | { readonly op: 'mailbox.vacation'; readonly address: string; readonly vacation: Vacation | null }
  /** Where mail the filter tagged as spam goes: a Maildir++ folder of the mailbox, or null for the inbox. */
  | { readonly op: 'mailbox.spam'; readonly address: string; readonly folder: string | null }
  | { readonly op: 'alias.add'; readonly address: string; readonly target: string }
  | { readonly op: 'alias.remove'; readonly address: string; readonly target?: string }
  /** The catch-all: what mail for an unknown address of the domain does (vdeliver's policy word). */
  | { readonly op: 'domain.catchall'; readonly domain: string; readonly policy: string }
  | { readonly op: 'admin.add'; readonly domain: string; readonly login: string }
  | { readonly op: 'admin.remove'; readonly domain: string; readonly login: string }
  /** The mailing lists' changes (src/access/lists.ts). */
  | ListChange;

/** Flags that grant roles: only a system administrator sets them. */
const ROLE_FLAGS: readonly MailboxFlag[] = ['domain-admin', 'system-admin'];

/** `user@domain` with its domain resolved through alias domains; an unknown domain is a DirectoryError. */
async function canonical(ctx: Ctx, address: string): Promise<string> {
  const [local, domain] = parseAddress(address);
  const d = await ctx.dir.resolveDomain(domain);
  if (!d) throw new DirectoryError(`no domain ${domain} in the directory`);
  return `${local}@${d.name}`;
}

async function canonicalDomain(ctx: Ctx, domain: string): Promise<string> {
  const d = await ctx.dir.resolveDomain(domain.trim());
  if (!d) throw new DirectoryError(`no domain ${domain.trim()} in the directory`);
  return d.name;
}

const split = (address: string): [string, string] => {
  const at = address.lastIndexOf('@');
  return [address.slice(0, at), address.slice(at + 1)];
};

/** What acting on mailbox `address` as its owner would grant: its roles, as needs (none for a plain user). */
async function rolesOf(ctx: Ctx, address: string): Promise<Need[]> {
  const p = await principalOf(ctx.dir, address);
  if (p?.kind !== 'login') return [];
  return p.systemAdmin ? [{ scope: 'system' }] : p.domains.map((domain): Need => ({ scope: 'domain', domain }));
}

/**
 * What taking the mail of `local@domain` would take over: an alias of that name wins over the mailbox at delivery,
 * and one named `local-ext` over the mailbox `local`'s extension addresses (vdeliver's box-ext rule: when no mailbox
 * or alias has the exact name). So: the roles of the mailbox the name falls to, if any.
 */
async function rolesUnder(ctx: Ctx, local: string, domain: string): Promise<Need[]> {
  const dash = local.indexOf('-');
  if (dash <= 0 || (await ctx.dir.getMailbox(domain, local))) return [];
  const base = local.slice(0, dash);
  return (await ctx.dir.getMailbox(domain, base)) ? rolesOf(ctx, `${base}@${domain}`) : [];
}

/** The change with names made canonical, and what it needs. */
async function prepare(
  ctx: Ctx,
  c: Exclude<Change, ListChange>,
): Promise<{ change: Exclude<Change, ListChange>; needs: Need[] }> {
  switch (c.op) {
    case 'mailbox.add': {
      const address = await canonical(ctx, c.address);
      const needs: Need[] = [{ scope: 'domain', domain: split(address)[1] }];
      if (c.flags?.some((f) => ROLE_FLAGS.includes(f))) needs.push({ scope: 'system' });
      return { change: { ...c, address }, needs };
    }
    case 'alias.add': {
      const address = await canonical(ctx, c.address);
      const [local, domain] = split(address);
      return {
        change: { ...c, address },
        needs: [
          { scope: 'domain', domain },
          { scope: 'target', target: c.target },
          ...(await rolesUnder(ctx, local, domain)),
        ],
      };
    }
    case 'alias.remove': {
      const address = await canonical(ctx, c.address);
      return { change: { ...c, address }, needs: [{ scope: 'domain', domain: split(address)[1] }] };
    }
    // Whoever takes a mailbox over (its password, its mail, its logins) takes its roles, and whoever changes it acts
    // for it: so every change of a mailbox needs the target's roles as well — a domain administrator cannot become a
    // system administrator, or the administrator of another domain, by setting the password of a mailbox in its own
    // domain that holds such a role, nor change such a mailbox's quota, autoresponder or spam folder.
    case 'mailbox.remove':
    case 'mailbox.services':
    case 'mailbox.quota': {
      const address = await canonical(ctx, c.address);
      return {
        change: { ...c, address },
        needs: [{ scope: 'domain', domain: split(address)[1] }, ...(await rolesOf(ctx, address))],
      };
    }
    case 'mailbox.password': {
      const address = await canonical(ctx, c.address);
      const [local, domain] = split(address);
      const needs: Need[] = [{ scope: 'mailbox', address }];
      // vpopmail's no-password-change: the user may not change it, an administrator of its domain may
      if ((await ctx.dir.getMailbox(domain, local))?.flags.includes('no-password-change') === true)
        needs.push({ scope: 'password-locked', address });
      return { change: { ...c, address }, needs: [...needs, ...(await rolesOf(ctx, address))] };
    }
    case 'mailbox.forward': {
      const address = await canonical(ctx, c.address);
      return {
        change: { ...c, address },
        needs: [
          { scope: 'mailbox', address },
          ...c.targets.map((target): Need => ({ scope: 'target', target })),
          ...(await rolesOf(ctx, address)),
        ],
      };
    }
    case 'mailbox.vacation':
    case 'mailbox.spam': {
      const address = await canonical(ctx, c.address);
      return { change: { ...c, address }, needs: [{ scope: 'mailbox', address }, ...(await rolesOf(ctx, address))] };
    }
    case 'domain.catchall': {
      const domain = await canonicalDomain(ctx, c.domain);
      return { change: { ...c, domain }, needs: [{ scope: 'domain', domain }] };
    }
    case 'admin.add':
    case 'admin.remove':
      return { change: { ...c, domain: await canonicalDomain(ctx, c.domain) }, needs: [{ scope: 'system' }] };
  }
}

/**
 * Checks the change against the principal (AccessDenied), then makes it through the directory (DirectoryError when
 * the request is wrong; anything else is temporary). Returns what was done, in a sentence. `session`: the id of the
 * web session that asks (kept when its login changes its own password; its other sessions end).
 */
export async function perform(ctx: Ctx, p: Principal, request: Change, session?: string): Promise<string> {
  if (isListChange(request)) return performListChange(ctx, p, request);
  const { change: c, needs } = await prepare(ctx, request);
  for (const n of needs) authorize(p, n);
  const self = p.kind === 'login' ? p.login : undefined;
  switch (c.op) {
    case 'mailbox.add': {
      const m = await createMailbox(ctx, {
        address: c.address,
        password: c.password,
        ...(c.realName === undefined ? {} : { realName: c.realName }),
        ...(c.quotaBytes === undefined ? {} : { quotaBytes: c.quotaBytes }),
        ...(c.quotaMessages === undefined ? {} : { quotaMessages: c.quotaMessages }),
        ...(c.flags === undefined ? {} : { flags: c.flags }),
        ...(c.office === undefined ? {} : { office: c.office }),
      });
      return `added ${m.local}@${m.domain}`;
    }
    case 'mailbox.remove':
      if (c.address === self)
        throw new AccessDenied(`${c.address} is the mailbox you are logged in with; ask another administrator`);
      await removeMailbox(ctx, c.address, c.keepFiles !== true);
      return `deleted ${c.address}`;
    case 'mailbox.password': {
      if (c.password === '') throw new DirectoryError('the password is empty; give one');
      const [local, domain] = split(c.address);
      await ctx.dir.updateMailbox(domain, local, { passwordHash: await hashPassword(c.password) });
      // whoever was logged in with the old one is logged out — when the mailbox set it itself, all but this session
      await ctx.dir.deleteSessions(
        c.address === self && session !== undefined ? { login: c.address, except: session } : { login: c.address },
      );
      return `password of ${c.address} changed`;
    }
    case 'mailbox.quota': {
      const [local, domain] = split(c.address);
      const m = await ctx.dir.updateMailbox(domain, local, { quotaBytes: c.quotaBytes });
      return `quota of ${c.address}: ${m.quotaBytes === null ? 'none' : `${m.quotaBytes} bytes`}`;
    }
    case 'mailbox.forward': {
      const [local, domain] = split(c.address);
      await ctx.dir.updateMailbox(domain, local, { forward: c.targets, keepCopy: c.keepCopy });
      return c.targets.length === 0
        ? `${c.address} is not forwarded`
        : `${c.address} forwarded to ${c.targets.join(', ')}${c.keepCopy ? ', keeping a copy' : ''}`;
    }
    case 'mailbox.services': {
      const [local, domain] = split(c.address);
      const cur = await ctx.dir.getMailbox(domain, local);
      if (!cur) throw new DirectoryError(`no mailbox ${c.address}`);
      const off = new Map<MailboxFlag, boolean>([
        ['no-pop', !c.pop],
        ['no-imap', !c.imap],
        ['no-smtp-auth', !c.smtp],
      ]);
      const flags = [...cur.flags.filter((f) => !off.has(f)), ...[...off].filter(([, v]) => v).map(([f]) => f)];
      await ctx.dir.updateMailbox(domain, local, { flags });
      const on = [c.pop ? 'POP3' : '', c.imap ? 'IMAP' : '', c.smtp ? 'SMTP AUTH' : ''].filter((x) => x !== '');
      return `${c.address} may use ${on.length === 0 ? 'no service' : on.join(', ')}`;
    }
    case 'mailbox.vacation': {
      const [local, domain] = split(c.address);
      await ctx.dir.updateMailbox(domain, local, { vacation: c.vacation });
      return c.vacation === null
        ? `no vacation reply for ${c.address}`
        : `vacation reply on for ${c.address} (once per sender in ${c.vacation.days} days)`;
    }
    case 'mailbox.spam': {
      const [local, domain] = split(c.address);
      await ctx.dir.updateMailbox(domain, local, { spamFolder: c.folder });
      return c.folder === null
        ? `spam for ${c.address} stays in the inbox`
        : `spam for ${c.address} goes to the folder ${c.folder}`;
    }
    case 'alias.add': {
      const [local, domain] = split(c.address);
      // an alias wins over a mailbox of the same name at delivery (as a .qmail-NAME beside a vpopmail user does):
      // `quail alias add` may still do that on purpose; through here (the web admin) it is refused
      if (p.kind !== 'system' && (await ctx.dir.getMailbox(domain, local)))
        throw new DirectoryError(
          `${c.address} is a mailbox: an alias of that name would take all its mail; set the mailbox's forwarding instead, or choose another name`,
        );
      const a = await ctx.dir.addAlias(domain, local, [c.target]);
      return `${c.address} -> ${a.targets.join(', ')}`;
    }
    case 'alias.remove': {
      const [local, domain] = split(c.address);
      if (!(await ctx.dir.deleteAlias(domain, local, c.target)))
        throw new DirectoryError(`no alias ${c.address}${c.target === undefined ? '' : ` to ${c.target}`}`);
      return `removed ${c.address}${c.target === undefined ? '' : ` -> ${c.target}`}`;
    }
    case 'domain.catchall': {
      const d = await changeDomain(ctx, c.domain, { policy: parsePolicy(c.policy) });
      return `mail for unknown addresses of ${d.name}: ${c.policy}`;
    }
    case 'admin.add':
      return (await ctx.dir.addDomainAdmin(c.domain, c.login))
        ? `${c.login.toLowerCase()} administers ${c.domain}`
        : `${c.login.toLowerCase()} already administers ${c.domain}`;
    case 'admin.remove':
      if (!(await ctx.dir.removeDomainAdmin(c.domain, c.login)))
        throw new DirectoryError(`${c.login} is not an administrator of ${c.domain}`);
      return `${c.login.toLowerCase()} no longer administers ${c.domain}`;
  }
}
