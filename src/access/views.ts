// What a principal may see: the pages' data, each read checked by the same decision as the changes.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { formatPolicy, type Ctx, type Vacation } from '../directory/index.js';
import { isListView, listView, type ListView, type ListViewData } from './lists.js';
import { authorize, type Principal } from './policy.js';

export type View =
  | { readonly view: 'home' }
  | { readonly view: 'domain'; readonly domain: string }
  | { readonly view: 'self' }
  /** The mailing lists' pages (src/access/lists.ts). */
  | ListView
  /** Every domain's administrators (domain_admins): the system administrator's page. */
  | { readonly view: 'admins' };

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
  readonly vacation: Vacation | null;
  /** The Maildir++ folder for tagged spam; null: the inbox. */
  readonly spamFolder: string | null;
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
  | { readonly view: 'self'; readonly mailbox: MailboxRow }
  | ListViewData
  | {
      readonly view: 'admins';
      readonly admins: ReadonlyArray<{ readonly domain: string; readonly login: string }>;
      readonly domains: readonly string[];
    };

/**
 * What new/ and cur/ hold (Maildir++'s own count when maildirsize is missing), read without blocking: this runs in
 * the root supervisor, which must go on accepting connections meanwhile. A size comes from the name's `,S=`, else
 * lstat (a link is not followed). A Maildir that cannot be read counts as empty.
 */
async function usageOf(maildir: string): Promise<{ bytes: number; messages: number }> {
  let bytes = 0;
  let messages = 0;
  for (const sub of ['new', 'cur']) {
    const dir = join(maildir, sub);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      messages++;
      const s = /,S=(\d+)/.exec(name);
      if (s) bytes += Number(s[1]);
      else
        bytes += await lstat(join(dir, name)).then(
          (x) => x.size,
          () => 0,
        );
    }
  }
  return { bytes, messages };
}

/** A mailbox's row: its settings and its Maildir's use. */
async function row(ctx: Ctx, m: Awaited<ReturnType<Ctx['dir']['listMailboxes']>>[number]): Promise<MailboxRow> {
  const used = await usageOf(join(ctx.root, m.home, 'Maildir'));
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
    vacation: m.vacation,
    spamFolder: m.spamFolder,
  };
}

/** The data of a page, or AccessDenied; null when the domain or mailbox does not exist (404). */
export async function view(ctx: Ctx, p: Principal, v: View): Promise<ViewData | null> {
  if (isListView(v)) return listView(ctx, p, v);
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
        mailboxes: await Promise.all((await ctx.dir.listMailboxes(d.name)).map((m) => row(ctx, m))),
        aliases: (await ctx.dir.listAliases(d.name)).map((a) => ({ local: a.local, targets: a.targets })),
        admins: (await ctx.dir.listDomainAdmins(d.name)).map((a) => a.login),
      };
    }
    case 'admins':
      authorize(p, { scope: 'system' });
      return {
        view: 'admins',
        admins: (await ctx.dir.listDomainAdmins()).map((a) => ({ domain: a.domain, login: a.login })),
        domains: (await ctx.dir.listDomains()).map((d) => d.name),
      };
    case 'self': {
      if (p.kind === 'system') return null;
      const at = p.login.lastIndexOf('@');
      const m = await ctx.dir.getMailbox(p.login.slice(at + 1), p.login.slice(0, at));
      return m ? { view: 'self', mailbox: await row(ctx, m) } : null;
    }
  }
}
