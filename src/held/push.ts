// One push of a held Maildir over SMTP (serialmail's maildirserial + serialsmtp): several messages, one connection.
import type { Socket } from 'node:net';
import { readdir, open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { composeBounce, type BounceConfig } from '../bounce/index.js';
import { errText, type DeliveryResult } from '../core/index.js';
import type { NewMessage } from '../queue/index.js';
import { openSession, SmtpClient, transaction, type Classifier, type TlsPolicy } from '../remote/index.js';
import { readEnvelope } from './envelope.js';
import { flockNow } from './lock.js';

/** serialmail's default lifetime: 14 days (maildirsmtp runs maildirserial -t 1209600). */
export const DEFAULT_LIFETIME = 1209600;

/** What happened to one message of the Maildir. */
export type MessageFate =
  | 'sent' // the remote said 250 to its DATA: removed
  | 'bounced' // permanent failure (or temporary past the lifetime): bounce queued, removed
  | 'refused' // permanent failure without -b: left in the Maildir for the administrator
  | 'kept' // temporary failure: stays for the next push
  | 'busy' // another push holds this message right now
  | 'foreign'; // no Delivered-To with the prefix: left alone

export interface MessageReport {
  readonly file: string;
  readonly fate: MessageFate;
  /** qmail-remote's report text, or why the message was left. */
  readonly report: string;
}

/** A connection to the customer's SMTP server, or the reason none was made (a temporary failure). */
export type Connector = () => Promise<{ socket: Socket; ip: string } | { error: string }>;

export interface PushOptions {
  /** The Maildir (its new/ and cur/ are read). */
  readonly dir: string;
  /** The Delivered-To prefix (e.g. `some.example.com-`). */
  readonly prefix: string;
  readonly connect: Connector;
  /** Name the certificate is checked against when the policy verifies; the host as given. */
  readonly servername: string;
  readonly helo: string;
  readonly tls: TlsPolicy;
  /** Timeout of every SMTP read and write. */
  readonly remoteMs: number;
  readonly classify: Classifier;
  /** Seconds; a temporary failure of an older message bounces (maildirserial -t). */
  readonly lifetime: number;
  /** Bounce permanent failures to the Return-Path (maildirserial -b); else they stay in the Maildir. */
  readonly bounce?: { readonly config: BounceConfig; readonly inject: (m: NewMessage) => Promise<string> };
  /** Unix seconds now. */
  readonly now?: () => number;
  /** Called once per message as its fate is decided (for logs and the CLI's output). */
  readonly onMessage?: (r: MessageReport) => void;
  /** Further Maildirs (other held domains) pushed after `dir` on the same connection: ODMR's ATRN for several. */
  readonly also?: readonly { readonly dir: string; readonly prefix: string }[];
}

export interface PushResult {
  /** A connection was made and the server greeted us (the customer was reachable). */
  readonly reached: boolean;
  /** Why the push stopped early (no connection, greeting refused, connection lost), if it did. */
  readonly stopped?: string;
  readonly messages: readonly MessageReport[];
}

/** Files in new/ then cur/, oldest name first (Maildir names start with the delivery time). */
async function heldFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    for (const n of names.filter((x) => !x.startsWith('.')).sort(byTime)) out.push(join(dir, sub, n));
  }
  return out;
}

const timeOf = (name: string): number => Number(/^([0-9]+)/.exec(name)?.[1] ?? Number.MAX_SAFE_INTEGER);
const byTime = (a: string, b: string): number => timeOf(a) - timeOf(b) || (a < b ? -1 : a > b ? 1 : 0);

/** The message's arrival time: the time its Maildir name starts with, else the file's mtime. */
async function birthOf(path: string): Promise<number> {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const t = timeOf(base);
  if (t !== Number.MAX_SAFE_INTEGER) return t;
  return Math.floor((await stat(path)).mtimeMs / 1000);
}

/**
 * Takes one message for this push: flock on the file (no wait), then checks that the path still names the
 * same file (another push may have sent and removed it between our readdir and our lock). 'gone' and
 * 'busy' mean: not ours. The lock ends when the handle is closed, or when this process dies.
 */
async function claim(path: string): Promise<FileHandle | 'busy' | 'gone'> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return 'gone';
  }
  try {
    if ((await flockNow(fh.fd)) === 'busy') {
      await fh.close();
      return 'busy';
    }
    const [mine, now] = await Promise.all([fh.stat(), stat(path).catch(() => undefined)]);
    if (now === undefined || now.ino !== mine.ino || now.dev !== mine.dev) {
      await fh.close();
      return 'gone';
    }
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Removes a message and makes the removal durable (fsync of its directory). */
async function remove(path: string): Promise<void> {
  await unlink(path);
  const d = await open(path.slice(0, path.lastIndexOf('/')), 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Pushes every message of the Maildir whose Delivered-To starts with the prefix, on one connection (a new one
 * when the server closed it after a failure). A message is removed only after the remote's 250 to its DATA
 * (or after its bounce is queued). Nothing is touched when no connection can be made: a customer who is
 * offline is not a temporary rejection, and the lifetime applies only to what the server said (serialmail's
 * rule). Throws only when the Maildir cannot be read.
 */
export async function pushMaildir(o: PushOptions): Promise<PushResult> {
  const now = o.now ?? ((): number => Math.floor(Date.now() / 1000));
  const reports: MessageReport[] = [];
  const note = (r: MessageReport): void => {
    reports.push(r);
    o.onMessage?.(r);
  };
  let session: { client: SmtpClient; ip: string; ext: ReadonlyMap<string, string> } | undefined;
  let reached = false;
  let stopped: string | undefined;
  const files: { path: string; dir: string; prefix: string }[] = [];
  for (const src of [{ dir: o.dir, prefix: o.prefix }, ...(o.also ?? [])])
    for (const path of await heldFiles(src.dir)) files.push({ path, ...src });
  try {
    for (const { path, dir, prefix } of files) {
      const file = path.slice(dir.length + 1);
      let env;
      try {
        env = await readEnvelope(path, prefix);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // sent by another push meanwhile
        throw err;
      }
      if (env.kind === 'foreign') {
        note({ file, fate: 'foreign', report: `${env.reason}; left in the Maildir` });
        continue;
      }
      if (session === undefined) {
        const opened = await openConnection(o);
        if ('error' in opened) {
          stopped = opened.error;
          break;
        }
        reached = true;
        session = opened;
      }
      const held = await claim(path);
      if (held === 'gone') continue;
      if (held === 'busy') {
        note({ file, fate: 'busy', report: 'another push is sending this message' });
        continue;
      }
      try {
        const out = await transaction(
          session.client,
          session.ip,
          { sender: env.sender, recipients: [env.recipient], messagePath: path, offset: env.offset },
          session.ext,
          o.classify,
          false,
        );
        const result: DeliveryResult = out.results[0] ?? { result: 'deferral', report: 'no result (#4.3.0)\n' };
        note({ file, ...(await settle(o, path, env.sender, env.recipient, result, now)) });
        if (!out.reusable) session = undefined;
        if (!out.reusable && /connection died/.test(result.report)) {
          stopped = result.report.trim();
          break;
        }
      } finally {
        await held.close();
      }
    }
  } finally {
    session?.client.quit();
  }
  return { reached, messages: reports, ...(stopped !== undefined ? { stopped } : {}) };
}

async function openConnection(
  o: PushOptions,
): Promise<{ client: SmtpClient; ip: string; ext: ReadonlyMap<string, string> } | { error: string }> {
  for (let tryTls = true; ; tryTls = false) {
    const c = await o.connect();
    if ('error' in c) return c;
    const client = new SmtpClient(c.socket, o.remoteMs);
    const opened = await openSession(client, {
      ip: c.ip,
      servername: o.servername,
      helo: o.helo,
      tls: o.tls,
      tryTls,
    });
    if (opened.kind === 'ok') return { client, ip: c.ip, ext: opened.ext };
    client.close();
    if (!(opened.tlsFailed === true && tryTls)) return { error: opened.result.report.trim() };
  }
}

/** Decides a message's fate from its result: remove, bounce and remove, or keep. */
async function settle(
  o: PushOptions,
  path: string,
  sender: string,
  recipient: string,
  r: DeliveryResult,
  now: () => number,
): Promise<{ fate: MessageFate; report: string }> {
  const report = r.report.trim();
  if (r.result === 'success') {
    await remove(path);
    return { fate: 'sent', report };
  }
  let failure = r.result === 'failure';
  const birth = await birthOf(path);
  let text = r.report;
  if (!failure && now() - birth > o.lifetime) {
    failure = true;
    text = `${r.report}I'm not going to try again; this message has been in the held Maildir too long.\n`;
  }
  if (!failure) return { fate: 'kept', report };
  if (o.bounce === undefined) return { fate: 'refused', report: `${report}; left in the Maildir (no -b)` };
  const size = (await stat(path)).size;
  const plan = composeBounce({
    config: o.bounce.config,
    sender,
    failures: [{ address: recipient, report: text }],
    messagePath: path,
    messageSize: size,
    now: now(),
    birth,
    uniqueId: path.slice(path.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9.]/g, '.'),
  });
  let bounceNote = 'no bounce (a failed double bounce is discarded)';
  if (plan.kind !== 'triple') {
    try {
      const id = await o.bounce.inject({
        sender: plan.sender,
        recipients: [plan.recipient],
        data: plan.data,
        injector: { kind: 'bounce' },
        meta: { origin: 'bounce' },
      });
      bounceNote = `bounce ${id} queued for ${plan.recipient || '<>'}`;
    } catch (err) {
      // The bounce could not be queued: keep the message (a retry never loses mail; a lost bounce would).
      return { fate: 'kept', report: `${report}; bounce not queued: ${errText(err)}` };
    }
  }
  await remove(path);
  return { fate: 'bounced', report: `${report}; ${bounceNote}` };
}
