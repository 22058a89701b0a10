// vdeliver: vdelivermail for quail — delivers one message for a directory-managed domain (in-process or as a program).
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { open, stat, unlink, writeFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { errText, type DeliveryResult } from '../core/index.js';
import {
  UniqueNamer,
  deliverToMaildir,
  nearQuota,
  overQuota,
  quotaLine,
  readUsage,
  recordDelivery,
} from '../maildir/index.js';
import { parsePolicyWord, targetKind, type UnknownPolicy } from './line.js';
import { DOMAIN_WARN_FILE, domainUsage, domainWarningMessage, recordDomainDelivery, warningMessage } from './quota.js';
import type { AddressLookup, LookupDomain as Domain, LookupMailbox as Mailbox, MailboxLookup } from './types.js';
import { ensureFolder, spamVerdict, verdictOfHead, type SpamVerdict } from './spam.js';
import { vacationReply, type ReplyRunner } from './vacation.js';

export interface VdeliverOptions {
  readonly root: string;
  /** The directory, read-only: src/directory's Directory (opened read-only by the caller) or any MailboxLookup. */
  readonly directory: MailboxLookup;
  /** LOCAL: the whole local part (e.g. `example.com-joe`). */
  readonly local: string;
  /** HOST: the recipient's domain (the domain or one of its alias domains). */
  readonly domain: string;
  /** EXT: the address inside the domain (`joe`). */
  readonly ext: string;
  readonly messagePath: string;
  /**
   * The message's bytes, when the caller read it whole (src/local's header look, under 64 KiB): then the loop check,
   * the size, the filter's verdict and the Maildir copy use them and the file is not opened again
   * (docs/PERFORMANCE.md ninth pass). They must be the file's bytes; programs and vacation still read the file.
   */
  readonly message?: Buffer;
  readonly sender: string;
  /** `Delivered-To: ...\n` and `Return-Path: <...>\n` as qmail-local makes them. */
  readonly dtline: string;
  readonly rpline: string;
  /** The policy word from the `.qmail-default` line; default: the domain's policy in the directory. */
  readonly policy?: string;
  /** The caller's Maildir namer (pass local's, one per process). */
  readonly namer?: UniqueNamer;
  /** Milliseconds since the epoch (quota warning dates, the domain usage cache); default Date.now. */
  readonly now?: () => number;
  /** Follows a mailbox's `.qmail` file (src/local's runner); without it such a mailbox defers. */
  readonly dotQmail?: DotQmailRunner;
  /** Runs an alias's `|program` target (src/local's program runner); without it such an alias defers. */
  readonly program?: ProgramRunner;
  /** Queues a vacation reply (RFC 3834, vacation.ts); without it no mailbox replies. */
  readonly reply?: ReplyRunner;
}

/** An alias's `|program` target: the command (without `|`), run in the domain's directory `ROOT/domains/<dom>`. */
export interface ProgramRequest {
  readonly command: string;
  readonly home: string;
}

/** Runs one program target with the message on stdin; its exit read as qmail-local does (0/99 ok, 100 bounce, else defer). */
export type ProgramRunner = (req: ProgramRequest) => Promise<VdeliverResult>;

/** What vdeliver hands its caller when the mailbox's home holds a `.qmail` with instructions (README: A mailbox's `.qmail`). */
export interface DotQmailRequest {
  /** `joe@example.com`. */
  readonly address: string;
  /** The mailbox's home `ROOT/domains/<dom>/<user>`: programs run there, relative paths start there. */
  readonly home: string;
  /** The mailbox's own Maildir, `HOME/Maildir/`: a line naming it goes through the quota. */
  readonly maildir: string;
  /** The `.qmail` as vdeliver read it. */
  readonly text: string;
  /** Call once before running a file that names `maildir`: null to go ahead, else the quota's deferral or failure. */
  readonly checkQuota: () => Promise<VdeliverResult | null>;
  /** Call after the run delivered into `maildir` (after checkQuota): records usage, sends the 90 % warnings. */
  readonly delivered: () => Promise<void>;
}

/** Runs a mailbox's `.qmail` instructions and says what came of them (forwards for the caller to queue). */
export type DotQmailRunner = (req: DotQmailRequest) => Promise<VdeliverResult>;

/** Forward targets for the caller to queue (message prefixed with `prepend`), like local's ForwardRequest. */
export interface VdeliverForward {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly prepend: string;
}

export interface VdeliverResult extends DeliveryResult {
  readonly forward?: VdeliverForward;
}

/**
 * Without the caller's namer (one per process, as local's pool has), a throw-away one whose "pid" part also
 * carries randomness, so two deliveries in the same second by the same process cannot pick the same name.
 */
const oneShotNamer = (): UniqueNamer => new UniqueNamer(hostname(), process.pid * 1_000_000 + randomInt(1_000_000));

const defer = (report: string): VdeliverResult => ({ result: 'deferral', report });
const fail = (report: string): VdeliverResult => ({ result: 'failure', report });

/** The loop check on lines of the message's start: true or false once decided, undefined while the header goes on. */
function loopIn(lines: readonly string[], want: string): boolean | undefined {
  for (const l of lines) {
    if (l === '' || l === '\r') return false;
    if (`${l}\n`.toLowerCase() === want) return true;
  }
  return undefined;
}

/** qmail-local's loop check: does the header already hold our Delivered-To line? */
async function looping(o: VdeliverOptions): Promise<boolean> {
  const want = o.dtline.toLowerCase();
  if (o.message !== undefined) {
    const lines = o.message.toString('latin1').split('\n');
    lines.pop(); // a last line without newline ends the header, as at the end of the file below
    return loopIn(lines, want) ?? false;
  }
  const fh = await open(o.messagePath, 'r');
  try {
    let pending = '';
    const buf = Buffer.alloc(65536);
    for (let pos = 0; ;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return false;
      pos += bytesRead;
      const lines = (pending + buf.toString('latin1', 0, bytesRead)).split('\n');
      pending = lines.pop() ?? '';
      const decided = loopIn(lines, want);
      if (decided !== undefined) return decided;
    }
  } finally {
    await fh.close();
  }
}

/** A system error as its errno name (`ENOENT`), the short form the deferral reports below carry; else the value. */
const errnoText = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);

/** A mailbox's own Maildir and the domain, for the quota: see README: Quota. */
interface Owner {
  readonly m: Mailbox;
  readonly dom: Domain;
}

/** Before a delivery into a mailbox: the refusal (see README: Quota, grace rule), or the domain's usage (null: no domain quota). */
type Checked = { readonly refused: VdeliverResult } | { readonly domainBytes: number | null };

async function quotaCheck(o: VdeliverOptions, md: string, size: number, { m, dom }: Owner): Promise<Checked> {
  const address = `${m.local}@${m.domain}`;
  if (m.quotaBytes !== null || m.quotaMessages !== null) {
    if (m.quotaBytes !== null && size > m.quotaBytes) {
      return {
        refused: fail(
          `The message (${size} bytes) is larger than the whole quota of ${address} (${m.quotaBytes} bytes). (#5.2.3)`,
        ),
      };
    }
    const u = readUsage(md, quotaLine(m.quotaBytes, m.quotaMessages));
    if (overQuota(u, size, m.quotaBytes, m.quotaMessages)) {
      return {
        refused: defer(
          `The mailbox of ${address} is over its quota (${u.bytes} of ${m.quotaBytes ?? '∞'} bytes, ` +
            `${u.messages} of ${m.quotaMessages ?? '∞'} messages); trying again later. (#4.2.2)`,
        ),
      };
    }
  }
  const dq = dom.limits.quotaBytes;
  if (dq === null) return { domainBytes: null };
  if (size > dq)
    return {
      refused: fail(
        `The message (${size} bytes) is larger than the whole quota of the domain ${dom.name} (${dq} bytes). (#5.2.3)`,
      ),
    };
  const u = await domainUsage(join(o.root, 'domains', dom.name), dq, (o.now ?? Date.now)(), async () =>
    (await o.directory.listMailboxes(dom.name)).map((x) => join(o.root, x.home, 'Maildir')),
  );
  if (u.bytes + size > dq) {
    return {
      refused: defer(
        `The domain ${dom.name} is over its quota (${u.bytes} of ${dq} bytes); trying again later. (#4.2.2)`,
      ),
    };
  }
  return { domainBytes: u.bytes };
}

const hasQuota = (m: Mailbox): boolean => m.quotaBytes !== null || m.quotaMessages !== null;

/** Puts a notice (a quota warning) straight into `m`'s Maildir, counted in its maildirsize and the domain's cache. */
async function putNotice(o: VdeliverOptions, { m, dom }: Owner, text: string): Promise<boolean> {
  const md = join(o.root, m.home, 'Maildir');
  const data = Buffer.from(text, 'latin1');
  const r = await deliverToMaildir(md, data, '/dev/null', o.namer ?? oneShotNamer());
  if (r.kind !== 'ok') return false;
  if (hasQuota(m)) recordDelivery(md, data.length);
  if (dom.limits.quotaBytes !== null) recordDomainDelivery(join(o.root, 'domains', dom.name), data.length);
  return true;
}

/**
 * One warning per crossing of 90 %: `marker` (made with O_EXCL) says it was sent; it is removed when usage is
 * found below 90 % again, so the next crossing warns again. The warning itself is not refused by any quota.
 */
async function warnOnce(marker: string, near: boolean, nowMs: number, send: () => Promise<boolean>): Promise<void> {
  if (!near) {
    await unlink(marker).catch(() => undefined);
    return;
  }
  try {
    await writeFile(marker, `${new Date(nowMs).toISOString()}\n`, { flag: 'wx', mode: 0o600 });
  } catch {
    return; // already warned (or cannot mark: then do not risk a warning per message)
  }
  if (!(await send())) await unlink(marker).catch(() => undefined);
}

/**
 * After a delivery of `size` bytes into the owner's Maildir: usage recorded (maildirsize, the domain's cache), then
 * the mailbox's warning and the domain's (to its postmaster mailbox if there is one, else to this mailbox).
 */
async function afterDelivery(
  o: VdeliverOptions,
  md: string,
  size: number,
  owner: Owner,
  domainBytes: number | null,
): Promise<void> {
  const { m, dom } = owner;
  const nowMs = (o.now ?? Date.now)();
  try {
    const domHome = join(o.root, 'domains', dom.name);
    if (domainBytes !== null) recordDomainDelivery(domHome, size);
    if (hasQuota(m)) {
      recordDelivery(md, size);
      const after = readUsage(md, quotaLine(m.quotaBytes, m.quotaMessages));
      await warnOnce(join(md, 'quotawarn'), nearQuota(after, m.quotaBytes, m.quotaMessages), nowMs, () =>
        putNotice(
          o,
          owner,
          warningMessage(`${m.local}@${m.domain}`, after, m.quotaBytes, m.quotaMessages, new Date(nowMs)),
        ),
      );
    }
    const dq = dom.limits.quotaBytes;
    if (domainBytes !== null && dq !== null) {
      const used = domainBytes + size;
      await warnOnce(
        join(domHome, DOMAIN_WARN_FILE),
        nearQuota({ bytes: used, messages: 0 }, dq, null),
        nowMs,
        async () => {
          const to = (await o.directory.getMailbox(dom.name, 'postmaster')) ?? m;
          return putNotice(
            o,
            { m: to, dom },
            domainWarningMessage(`${to.local}@${to.domain}`, dom.name, used, dq, new Date(nowMs)),
          );
        },
      );
    }
  } catch {
    // maildirsize and .domainsize are caches: the next reader that finds them wrong recalculates them.
  }
}

/** The bytes a Maildir delivery writes: Return-Path and Delivered-To, then the message. */
async function deliverySize(o: VdeliverOptions): Promise<number> {
  const size = o.message !== undefined ? o.message.length : (await stat(o.messagePath)).size;
  return Buffer.byteLength(o.rpline + o.dtline, 'latin1') + size;
}

/**
 * Into a Maildir (an alias's or a mailbox's: `owner`, whose quota counts); with `folder`, into that Maildir++ folder
 * of it (the spam folder), made on first use — the quota is still the Maildir's, which counts its folders.
 */
async function intoMaildir(o: VdeliverOptions, dir: string, owner?: Owner, folder?: string): Promise<VdeliverResult> {
  const md = dir.endsWith('/') ? dir : `${dir}/`;
  let size: number;
  try {
    size = await deliverySize(o);
  } catch (err) {
    return defer(`Unable to read message: ${errnoText(err)}. (#4.3.0)`);
  }
  let domainBytes: number | null = null;
  if (owner) {
    try {
      const c = await quotaCheck(o, md, size, owner);
      if ('refused' in c) return c.refused;
      domainBytes = c.domainBytes;
    } catch (err) {
      return defer(`Unable to read the quota of ${md}: ${errnoText(err)}. (#4.3.0)`);
    }
  }
  let into = md;
  if (folder !== undefined) {
    try {
      into = await ensureFolder(md, folder);
    } catch (err) {
      return defer(`Unable to make the folder ${md}.${folder}/: ${errnoText(err)}. (#4.3.0)`);
    }
  }
  const r = await deliverToMaildir(
    into,
    Buffer.from(o.rpline + o.dtline, 'latin1'),
    o.message ?? o.messagePath,
    o.namer ?? oneShotNamer(),
  );
  switch (r.kind) {
    case 'ok':
      if (owner) await afterDelivery(o, md, size, owner, domainBytes);
      return { result: 'success', report: `delivered to ${into}\n` };
    case 'nochdir':
      return defer('Unable to chdir to maildir. (#4.2.1)');
    case 'read-error':
      return defer('Unable to read message. (#4.3.0)');
    case 'error':
      return defer(`Unable to deliver to ${md}: ${errnoText(r.error)}. (#4.3.0)`);
  }
}

/** An alias's program target through the caller's runner (src/local's: one program runner in quail). */
function aliasProgram(o: VdeliverOptions, command: string, home: string): Promise<VdeliverResult> {
  if (!o.program) {
    return Promise.resolve(
      defer(`The program target |${command} runs only through quail's local delivery (its program runner). (#4.3.0)`),
    );
  }
  return o.program({ command, home });
}

/** Delivers to an alias's targets in order; addresses are gathered into one forward. */
async function toTargets(o: VdeliverOptions, dom: Domain, targets: readonly string[]): Promise<VdeliverResult> {
  const forwards: string[] = [];
  const reports: string[] = [];
  const domHome = join(o.root, 'domains', dom.name);
  for (const t of targets) {
    const kind = targetKind(t);
    let r: VdeliverResult | null = null;
    if (kind === 'forward') forwards.push(t.startsWith('&') ? t.slice(1) : t);
    else if (kind === 'program') r = await aliasProgram(o, t.slice(1), domHome);
    else if (kind === 'maildir') r = await intoMaildir(o, isAbsolute(t) ? t : join(domHome, t));
    else r = defer(`mbox targets are not supported by vdeliver (${t}); use a Maildir. (#4.3.0)`);
    if (r && r.result !== 'success') return r;
    if (r) reports.push(r.report);
  }
  return {
    result: 'success',
    report: reports.join('') + (forwards.length > 0 ? `forward: ${forwards.join(' ')}\n` : ''),
    ...(forwards.length > 0 ? { forward: { sender: o.sender, recipients: forwards, prepend: o.dtline } } : {}),
  };
}

/** Does a `.qmail` text hold any instruction (a line other than blank or a `#` comment)? */
const hasInstructions = (text: string): boolean =>
  text.split('\n').some((l) => {
    const s = l.replace(/[ \t]+$/, '');
    return s !== '' && !s.startsWith('#');
  });

/**
 * The mailbox's `.qmail` (in its home): its text, null when absent or without instructions, or a deferral. Most
 * mailboxes have none: a stat that says so throws nothing (a failed read was an exception and a rejected promise per
 * delivery, docs/PERFORMANCE.md tenth pass); the file, when there is one, is a few lines read at once.
 */
function mailboxDotQmail(home: string): string | null | VdeliverResult {
  const path = join(home, '.qmail');
  let text: string;
  try {
    // not a regular file (a directory, a FIFO that a read would wait on for ever): as if there were none
    if (statSync(path, { throwIfNoEntry: false })?.isFile() !== true) return null;
    text = readFileSync(path, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return null;
    return defer(`Unable to open ${join(home, '.qmail')}: ${errnoText(err)}. (#4.3.0)`);
  }
  return hasInstructions(text) ? text : null;
}

/** A mailbox's `.qmail`, followed by the caller's runner (README: A mailbox's `.qmail`); quota for lines naming its own Maildir. */
function followDotQmail(o: VdeliverOptions, owner: Owner, home: string, text: string): Promise<VdeliverResult> {
  const address = `${owner.m.local}@${owner.m.domain}`;
  if (!o.dotQmail) {
    return Promise.resolve(
      defer(
        `The mailbox ${address} has a .qmail file, which vdeliver follows only when quail's local delivery runs it ` +
          `in-process (a .qmail-default line | quail vdeliver under quail start). (#4.3.0)`,
      ),
    );
  }
  const maildir = join(home, 'Maildir/');
  let checked: { size: number; domainBytes: number | null } | null = null;
  return o.dotQmail({
    address,
    home,
    maildir,
    text,
    checkQuota: async () => {
      try {
        const size = await deliverySize(o);
        const c = await quotaCheck(o, maildir, size, owner);
        if ('refused' in c) return c.refused;
        checked = { size, domainBytes: c.domainBytes };
        return null;
      } catch (err) {
        return defer(`Unable to read the quota of ${maildir}: ${errnoText(err)}. (#4.3.0)`);
      }
    },
    delivered: async () => {
      if (checked !== null) await afterDelivery(o, maildir, checked.size, owner, checked.domainBytes);
    },
  });
}

/**
 * A mailbox: bounce-all fails; its forwarding in the directory (with or without a copy into the Maildir) wins over
 * a `.qmail` file in its home; else that `.qmail` when it has instructions; else the Maildir.
 */
async function toMailbox(o: VdeliverOptions, dom: Domain, m: Mailbox): Promise<VdeliverResult> {
  if (m.flags.includes('bounce-all')) return fail(`The mailbox ${m.local}@${m.domain} does not accept mail. (#5.2.1)`);
  const home = join(o.root, m.home);
  const maildir = join(home, 'Maildir');
  const folder = await spamFolderFor(o, m);
  if (typeof folder === 'object') return folder;
  if (m.forward.length === 0) {
    const dq = mailboxDotQmail(home);
    if (typeof dq === 'string') return followDotQmail(o, { m, dom }, home, dq);
    if (dq !== null) return dq;
    return intoMaildir(o, maildir, { m, dom }, folder);
  }
  const copy = m.keepCopy ? await intoMaildir(o, maildir, { m, dom }, folder) : null;
  if (copy && copy.result !== 'success') return copy;
  return {
    result: 'success',
    report: `${copy?.report ?? ''}forward: ${m.forward.join(' ')}\n`,
    forward: {
      sender: o.sender,
      recipients: m.forward.map((t) => (t.startsWith('&') ? t.slice(1) : t)),
      prepend: o.dtline,
    },
  };
}

async function byPolicy(o: VdeliverOptions, dom: Domain, p: UnknownPolicy, user: string): Promise<VdeliverResult> {
  switch (p.kind) {
    case 'bounce-no-mailbox':
      return fail(`Sorry, no mailbox here by that name (${user}@${dom.name}). (#5.1.1)`);
    case 'delete':
      return { result: 'success', report: `no mailbox ${user}@${dom.name}: message deleted by the domain's policy\n` };
    case 'forward':
      return {
        result: 'success',
        report: `forward: ${p.address}\n`,
        forward: { sender: o.sender, recipients: [p.address], prepend: o.dtline },
      };
    case 'mailbox': {
      const m = await o.directory.getMailbox(dom.name, p.local);
      if (!m)
        return defer(
          `The catch-all mailbox ${p.local}@${dom.name} does not exist; add it or change the domain's policy. (#4.3.5)`,
        );
      return toMailbox(o, dom, m);
    }
  }
}

/** The filter's verdict on this delivery's message, read once however many steps ask (spam folder, vacation). */
const verdicts = new WeakMap<VdeliverOptions, Promise<SpamVerdict>>();
function verdictOf(o: VdeliverOptions): Promise<SpamVerdict> {
  let v = verdicts.get(o);
  if (v === undefined) {
    v = o.message !== undefined ? Promise.resolve(verdictOfHead(o.message)) : spamVerdict(o.messagePath);
    verdicts.set(o, v);
  }
  return v;
}

/**
 * The mailbox's spam folder when it has one and quail's filter tagged this message as spam (spam.ts says which
 * tags are trusted); undefined: the inbox; a deferral when the message cannot be read.
 */
async function spamFolderFor(o: VdeliverOptions, m: Mailbox): Promise<string | undefined | VdeliverResult> {
  if (m.spamFolder === undefined || m.spamFolder === null || m.spamFolder === '') return undefined;
  try {
    const v = await verdictOf(o);
    return v.filtered && v.spam ? m.spamFolder : undefined;
  } catch (err) {
    return defer(`Unable to read message: ${errnoText(err)}. (#4.3.0)`);
  }
}

/** A mailbox that took the message and has a vacation: the reply, and its line in the report. */
async function withVacation(o: VdeliverOptions, m: Mailbox, r: VdeliverResult): Promise<VdeliverResult> {
  if (r.result !== 'success' || !m.vacation || !o.reply) return r;
  // spam gets no answer (its sender is most often forged: a reply would be backscatter)
  const v = await verdictOf(o).catch(() => ({ filtered: false }) as const);
  if (v.filtered && v.spam) return { ...r, report: `${r.report}vacation: no reply, tagged as spam by the filter\n` };
  const line = await vacationReply({
    home: join(o.root, m.home),
    address: `${m.local}@${m.domain}`,
    original: `${o.ext}@${o.domain}`,
    sender: o.sender,
    messagePath: o.messagePath,
    vacation: m.vacation,
    reply: o.reply,
    nowMs: (o.now ?? Date.now)(),
  });
  return { ...r, report: `${r.report}${line}` };
}

/**
 * MailboxLookup.lookupAddress from the lookup's single calls: resolveDomain, then the alias, then the mailbox `local`
 * and, when `local` has a dash after its first character, the mailbox before the dash (each asked only when needed).
 */
export async function lookupAddressByParts(
  lookup: Pick<MailboxLookup, 'resolveDomain' | 'getAlias' | 'getMailbox'>,
  domain: string,
  local: string,
): Promise<AddressLookup | null> {
  const dom = await lookup.resolveDomain(domain);
  if (!dom) return null;
  const l = local.toLowerCase();
  if (l === '') return { domain: dom, alias: null, mailbox: null };
  const alias = await lookup.getAlias(dom.name, l);
  if (alias) return { domain: dom, alias, mailbox: null };
  const dash = l.indexOf('-');
  const mailbox =
    (await lookup.getMailbox(dom.name, l)) ?? (dash > 0 ? await lookup.getMailbox(dom.name, l.slice(0, dash)) : null);
  return { domain: dom, alias: null, mailbox };
}

/**
 * One delivery for a `| quail vdeliver '' POLICY` line: alias → its targets; mailbox → its Maildir (quota,
 * forwarding, bounce-all); otherwise the domain's policy. Never throws: trouble is a deferral.
 */
export async function vdeliver(o: VdeliverOptions): Promise<VdeliverResult> {
  try {
    const user = o.ext.toLowerCase();
    const found = await o.directory.lookupAddress(o.domain, user);
    if (!found) return defer(`The domain ${o.domain} is not in the directory; run quail directory check. (#4.3.5)`);
    const dom = found.domain;
    const policy = o.policy === undefined || o.policy === '' ? dom.policy : parsePolicyWord(o.policy);
    if (typeof policy === 'string') return defer(`Trouble in vdeliver: ${policy}. (#4.3.0)`);
    if (await looping(o)) return fail('This message is looping: it already has my Delivered-To line. (#5.4.6)');
    if (user === '') return byPolicy(o, dom, policy, user);
    if (found.alias) return toTargets(o, dom, found.alias.targets);
    const m = found.mailbox;
    if (m) return withVacation(o, m, await toMailbox(o, dom, m));
    return byPolicy(o, dom, policy, user);
  } catch (err) {
    return defer(`Trouble in vdeliver: ${errText(err)}. (#4.3.0)`);
  }
}
