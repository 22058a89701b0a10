// What a principal may see: the pages' data, each read checked by the same decision as the changes.
import { join } from 'node:path';
import { formatPolicy, type Ctx } from '../directory/index.js';
import { scanUsage } from '../maildir/index.js';
import { authorize, type Principal } from './policy.js';

export type View =
  { readonly view: 'home' } | { readonly view: 'domain'; readonly domain: string } | { readonly view: 'self' };

export interface MailboxRow {
  readonly address: string;
  readonly local: string;
  readonly realName: string;
  readonly quotaBytes: number | null;
  readonly usedBytes: number;
  readonly messages: number;
  readonly forward: readonly string[];
  readonly keepCopy: boolean;
  /** The services it may log in to (no no-pop, no-imap, no-smtp-auth flag). */
  readonly pop: boolean;
  readonly imap: boolean;
  readonly smtp: boolean;
}

export type ViewData =
  | { readonly view: 'home'; readonly domains: readonly string[] }
  | {
      readonly view: 'domain';
      readonly domain: string;
      readonly aliasDomains: readonly string[];
      readonly catchall: string;
      readonly mailboxes: readonly MailboxRow[];
      readonly aliases: ReadonlyArray<{ readonly local: string; readonly targets: readonly string[] }>;
      readonly admins: readonly string[];
    }
  | { readonly view: 'self'; readonly mailbox: MailboxRow };

/** Mailbox, its Maildir's use counted from new/ and cur/ (read only; maildirsize is the deliverer's). */
function row(ctx: Ctx, m: Awaited<ReturnType<Ctx['dir']['listMailboxes']>>[number]): MailboxRow {
  let used = { bytes: 0, messages: 0 };
  try {
    used = scanUsage(join(ctx.root, m.home, 'Maildir'));
  } catch {
    // a Maildir that cannot be read shows as empty; delivery reports its own trouble
  }
  return {
    address: `${m.local}@${m.domain}`,
    local: m.local,
    realName: m.realName,
    quotaBytes: m.quotaBytes,
    usedBytes: used.bytes,
    messages: used.messages,
    forward: m.forward,
    keepCopy: m.keepCopy,
    pop: !m.flags.includes('no-pop'),
    imap: !m.flags.includes('no-imap'),
    smtp: !m.flags.includes('no-smtp-auth'),
  };
}

/** The data of a page, or AccessDenied; null when the domain or mailbox does not exist (404). */
export async function view(ctx: Ctx, p: Principal, v: View): Promise<ViewData | null> {
  switch (v.view) {
    case 'home': {
      const all = p.kind === 'system' || p.systemAdmin;
      return { view: 'home', domains: all ? (await ctx.dir.listDomains()).map((d) => d.name) : p.domains };
    }
    case 'domain': {
      const d = await ctx.dir.resolveDomain(v.domain);
      // the decision comes first: who may not see the domain is not told whether it exists
      authorize(p, { scope: 'domain', domain: d?.name ?? v.domain.toLowerCase() });
      if (!d) return null;
      return {
        view: 'domain',
        domain: d.name,
        aliasDomains: d.aliases,
        catchall: formatPolicy(d.policy),
        mailboxes: (await ctx.dir.listMailboxes(d.name)).map((m) => row(ctx, m)),
        aliases: (await ctx.dir.listAliases(d.name)).map((a) => ({ local: a.local, targets: a.targets })),
        admins: (await ctx.dir.listDomainAdmins(d.name)).map((a) => a.login),
      };
    }
    case 'self': {
      if (p.kind === 'system') return null;
      const at = p.login.lastIndexOf('@');
      const m = await ctx.dir.getMailbox(p.login.slice(at + 1), p.login.slice(0, at));
      return m ? { view: 'self', mailbox: row(ctx, m) } : null;
    }
  }
}
