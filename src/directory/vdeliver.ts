// vdeliver: vdelivermail for quail — delivers one message for a directory-managed domain (in-process or as a program).
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { createReadStream } from 'node:fs';
import { open, stat, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { UniqueNamer, deliverToMaildir } from '../maildir/index.js';
import { parsePolicy, targetKind } from './names.js';
import { domainUsage, nearQuota, quotaLine, readUsage, recordDelivery, recordDomainDelivery, warningMessage, type Usage } from './quota.js';
import type { Directory, Domain, Mailbox, UnknownPolicy } from './types.js';

export interface VdeliverOptions {
  readonly root: string;
  readonly directory: Directory;
  /** LOCAL: the whole local part (e.g. `example.com-joe`). */
  readonly local: string;
  /** HOST: the recipient's domain (the domain or one of its alias domains). */
  readonly domain: string;
  /** EXT: the address inside the domain (`joe`). */
  readonly ext: string;
  readonly messagePath: string;
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
}

/** Forward targets for the caller to queue (message prefixed with `prepend`), like local's ForwardRequest. */
export interface VdeliverForward {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly prepend: string;
}

export interface VdeliverResult {
  readonly result: 'success' | 'deferral' | 'failure';
  readonly report: string;
  readonly forward?: VdeliverForward;
}

/**
 * Without the caller's namer (one per process, as local's pool has), a throw-away one whose "pid" part also
 * carries randomness, so two deliveries in the same second by the same process cannot pick the same name.
 */
const oneShotNamer = (): UniqueNamer => new UniqueNamer(hostname(), process.pid * 1_000_000 + randomInt(1_000_000));

const defer = (report: string): VdeliverResult => ({ result: 'deferral', report });
const fail = (report: string): VdeliverResult => ({ result: 'failure', report });

/** qmail-local's loop check: does the header already hold our Delivered-To line? */
async function looping(messagePath: string, dtline: string): Promise<boolean> {
  const fh = await open(messagePath, 'r');
  try {
    const want = dtline.toLowerCase();
    let pending = '';
    const buf = Buffer.alloc(65536);
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return false;
      pos += bytesRead;
      const lines = (pending + buf.toString('latin1', 0, bytesRead)).split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) {
        if (l === '' || l === '\r') return false;
        if (`${l}\n`.toLowerCase() === want) return true;
      }
    }
  } finally {
    await fh.close();
  }
}

/** Runs `|program` like qmail-local: sh -c, message on stdin, qmail's environment, exit 0/99 ok, 100 hard. */
function runProgram(cmd: string, o: VdeliverOptions, home: string): Promise<VdeliverResult> {
  return new Promise((resolveRun) => {
    const env = {
      ...process.env, SENDER: o.sender, NEWSENDER: o.sender, RECIPIENT: `${o.local}@${o.domain}`, LOCAL: o.local,
      HOST: o.domain, EXT: o.ext, DTLINE: o.dtline, RPLINE: o.rpline, HOME: home,
    };
    const child = spawn('/bin/sh', ['-c', cmd], { cwd: home, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const take = (b: Buffer): void => {
      if (out.length < 1000) out += b.toString('latin1');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.stdin.on('error', () => undefined);
    createReadStream(o.messagePath).on('error', () => child.stdin.destroy()).pipe(child.stdin);
    child.on('error', (err) => resolveRun(defer(`Unable to run ${cmd}: ${err.message}. (#4.3.0)`)));
    child.on('close', (code) => {
      if (code === 0 || code === 99) resolveRun({ result: 'success', report: out });
      else if (code === 100 || code === 64 || code === 65 || code === 70 || code === 76 || code === 77 || code === 78 || code === 112) {
        resolveRun(fail(out || `${cmd} failed permanently (#5.3.0)`));
      } else resolveRun(defer(out || `${cmd} failed temporarily (#4.3.0)`));
    });
  });
}

const errText = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);

/** Mailbox and domain quota before a delivery: null (go ahead), or the deferral / failure (see README: grace rule). */
async function quotaCheck(o: VdeliverOptions, md: string, size: number, m: Mailbox, dom: Domain): Promise<VdeliverResult | null> {
  const address = `${m.local}@${m.domain}`;
  if (m.quotaBytes !== null || m.quotaMessages !== null) {
    if (m.quotaBytes !== null && size > m.quotaBytes) {
      return fail(`The message (${size} bytes) is larger than the whole quota of ${address} (${m.quotaBytes} bytes). (#5.2.3)`);
    }
    const u = readUsage(md, quotaLine(m.quotaBytes, m.quotaMessages));
    if ((m.quotaBytes !== null && u.bytes + size > m.quotaBytes) || (m.quotaMessages !== null && u.messages + 1 > m.quotaMessages)) {
      return defer(`The mailbox of ${address} is over its quota (${u.bytes} of ${m.quotaBytes ?? '∞'} bytes, ` +
        `${u.messages} of ${m.quotaMessages ?? '∞'} messages); trying again later. (#4.2.2)`);
    }
  }
  const dq = dom.limits.quotaBytes;
  if (dq !== null) {
    if (size > dq) return fail(`The message (${size} bytes) is larger than the whole quota of the domain ${dom.name} (${dq} bytes). (#5.2.3)`);
    const home = join(o.root, 'domains', dom.name);
    const u = await domainUsage(home, dq, (o.now ?? Date.now)(), async () =>
      (await o.directory.listMailboxes(dom.name)).map((x) => join(o.root, x.home, 'Maildir')));
    if (u.bytes + size > dq) {
      return defer(`The domain ${dom.name} is over its quota (${u.bytes} of ${dq} bytes); trying again later. (#4.2.2)`);
    }
  }
  return null;
}

/**
 * After a delivery: the one warning at 90 % (Maildir/quotawarn marks it sent; it is removed when usage falls
 * below 90 % again, so the next crossing warns again). The warning itself is not refused by the quota.
 */
async function quotaWarning(o: VdeliverOptions, md: string, m: Mailbox, after: Usage): Promise<void> {
  const marker = join(md, 'quotawarn');
  if (!nearQuota(after, m.quotaBytes, m.quotaMessages)) {
    await unlink(marker).catch(() => undefined);
    return;
  }
  try {
    await writeFile(marker, `${new Date((o.now ?? Date.now)()).toISOString()}\n`, { flag: 'wx', mode: 0o600 });
  } catch {
    return; // already warned (or cannot mark: then do not risk a warning per message)
  }
  const text = Buffer.from(warningMessage(`${m.local}@${m.domain}`, after, m.quotaBytes, m.quotaMessages, new Date((o.now ?? Date.now)())), 'latin1');
  const r = await deliverToMaildir(md, text, '/dev/null', o.namer ?? oneShotNamer());
  if (r.kind === 'ok') recordDelivery(md, text.length);
  else await unlink(marker).catch(() => undefined);
}

async function intoMaildir(o: VdeliverOptions, dir: string, q?: { m: Mailbox; dom: Domain }): Promise<VdeliverResult> {
  const prefix = Buffer.from(o.rpline + o.dtline, 'latin1');
  const md = dir.endsWith('/') ? dir : `${dir}/`;
  let size = prefix.length;
  try {
    size += (await stat(o.messagePath)).size;
  } catch (err) {
    return defer(`Unable to read message: ${errText(err)}. (#4.3.0)`);
  }
  const m = q?.m;
  const quota = m && (m.quotaBytes !== null || m.quotaMessages !== null) ? quotaLine(m.quotaBytes, m.quotaMessages) : null;
  if (q) {
    try {
      const refused = await quotaCheck(o, md, size, q.m, q.dom);
      if (refused) return refused;
    } catch (err) {
      return defer(`Unable to read the quota of ${md}: ${errText(err)}. (#4.3.0)`);
    }
  }
  const r = await deliverToMaildir(md, prefix, o.messagePath, o.namer ?? oneShotNamer());
  switch (r.kind) {
    case 'ok':
      try {
        if (q && q.dom.limits.quotaBytes !== null) recordDomainDelivery(join(o.root, 'domains', q.dom.name), size);
        if (m && quota !== null) {
          recordDelivery(md, size);
          await quotaWarning(o, md, m, readUsage(md, quota));
        }
      } catch {
        // maildirsize and .domainsize are caches: the next reader that finds them wrong recalculates them.
      }
      return { result: 'success', report: `delivered to ${md}\n` };
    case 'nochdir':
      return defer('Unable to chdir to maildir. (#4.2.1)');
    case 'read-error':
      return defer('Unable to read message. (#4.3.0)');
    case 'error':
      return defer(`Unable to deliver to ${md}: ${errText(r.error)}. (#4.3.0)`);
  }
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
    else if (kind === 'program') r = await runProgram(t.slice(1), o, domHome);
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

async function toMailbox(o: VdeliverOptions, dom: Domain, m: Mailbox): Promise<VdeliverResult> {
  if (m.flags.includes('bounce-all')) return fail(`The mailbox ${m.local}@${m.domain} does not accept mail. (#5.2.1)`);
  const maildir = join(o.root, m.home, 'Maildir');
  if (m.forward.length === 0) return intoMaildir(o, maildir, { m, dom });
  const copy = m.keepCopy ? await intoMaildir(o, maildir, { m, dom }) : null;
  if (copy && copy.result !== 'success') return copy;
  return {
    result: 'success',
    report: `${copy?.report ?? ''}forward: ${m.forward.join(' ')}\n`,
    forward: { sender: o.sender, recipients: m.forward.map((t) => (t.startsWith('&') ? t.slice(1) : t)), prepend: o.dtline },
  };
}

async function byPolicy(o: VdeliverOptions, dom: Domain, p: UnknownPolicy, user: string): Promise<VdeliverResult> {
  switch (p.kind) {
    case 'bounce-no-mailbox':
      return fail(`Sorry, no mailbox here by that name (${user}@${dom.name}). (#5.1.1)`);
    case 'delete':
      return { result: 'success', report: `no mailbox ${user}@${dom.name}: message deleted by the domain's policy\n` };
    case 'forward':
      return { result: 'success', report: `forward: ${p.address}\n`, forward: { sender: o.sender, recipients: [p.address], prepend: o.dtline } };
    case 'mailbox': {
      const m = await o.directory.getMailbox(dom.name, p.local);
      if (!m) return defer(`The catch-all mailbox ${p.local}@${dom.name} does not exist; add it or change the domain's policy. (#4.3.5)`);
      return toMailbox(o, dom, m);
    }
  }
}

/**
 * One delivery for a `| quail vdeliver '' POLICY` line: alias → its targets; mailbox → its Maildir (quota,
 * forwarding, bounce-all); otherwise the domain's policy. Never throws: trouble is a deferral.
 */
export async function vdeliver(o: VdeliverOptions): Promise<VdeliverResult> {
  try {
    const dom = await o.directory.resolveDomain(o.domain);
    if (!dom) return defer(`The domain ${o.domain} is not in the directory; run quail directory check. (#4.3.5)`);
    const policy = o.policy === undefined || o.policy === '' ? dom.policy : parsePolicy(o.policy);
    if (await looping(o.messagePath, o.dtline)) return fail('This message is looping: it already has my Delivered-To line. (#5.4.6)');
    const user = o.ext.toLowerCase();
    if (user === '') return byPolicy(o, dom, policy, user);
    const alias = await o.directory.getAlias(dom.name, user);
    if (alias) return toTargets(o, dom, alias.targets);
    const dash = user.indexOf('-');
    const m = (await o.directory.getMailbox(dom.name, user)) ?? (dash > 0 ? await o.directory.getMailbox(dom.name, user.slice(0, dash)) : null);
    if (m) return toMailbox(o, dom, m);
    return byPolicy(o, dom, policy, user);
  } catch (err) {
    return defer(`Trouble in vdeliver: ${err instanceof Error ? err.message : String(err)}. (#4.3.0)`);
  }
}
