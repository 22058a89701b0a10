// qmail-remote for one recipient: controls, route, connect, SMTP dialogue, and qmail's exact report texts (E.5-E.8).
import { createReadStream } from 'node:fs';
import { promises as dnsPromises } from 'node:dns';
import { quoteAddress, splitAddress } from '../address/index.js';
import type { Control } from '../control/index.js';
import type { RemoteJob, RemoteResult } from './types.js';
import { lookupRoute, type Route } from './routes.js';
import { localAddresses, resolveTargets, type RemoteResolver } from './mx.js';
import { Dropped, openSocket, SmtpClient, type Reply } from './client.js';

export interface RemoteOptions {
  /** A fresh snapshot of the control files (qmail-remote reads them per delivery). */
  readonly control: Control;
  /** DNS for MX and A lookups; default node:dns. */
  readonly resolver?: RemoteResolver;
  /** This machine's addresses for the best-MX check (E.4); default: the interface addresses. */
  readonly ipme?: ReadonlySet<string>;
}

const TEMP_CONTROL = 'Unable to read control files. (#4.3.0)\n';
const TEMP_NOCONN = "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n";
const PERM_PARTIAL = 'SMTP cannot transfer messages with partial final lines. (#5.6.2)\n';
const TEMP_READ = 'Unable to read message. (#4.3.0)\n';

const deferral = (report: string): RemoteResult => ({ result: 'deferral', report });
const failure = (report: string): RemoteResult => ({ result: 'failure', report });

/** "Remote host said: " followed by every line of the reply (qmail's outsmtptext). */
const said = (r: Reply): string => `Remote host said: ${r.lines.join('\n')}\n`;

interface Settings {
  readonly helo: string;
  readonly connectMs: number;
  readonly remoteMs: number;
  readonly route: Route;
}

function readSettings(control: Control, host: string): Settings | null {
  try {
    const helo = control.single('helohost').value;
    if (helo === null) return null;
    return {
      helo,
      connectMs: control.number('timeoutconnect').value * 1000,
      remoteMs: control.number('timeoutremote').value * 1000,
      route: lookupRoute(host, control.map('smtproutes').value),
    };
  } catch {
    return null; // an unreadable control file: temporary, never a silent default (SEMANTICS.md 0)
  }
}

/** Delivers job.messagePath to job.recipient; never throws (unknown errors are deferrals). */
export async function deliverRemote(job: RemoteJob, opts: RemoteOptions): Promise<RemoteResult> {
  try {
    return await deliver(job, opts);
  } catch (err) {
    return deferral(`Unexpected remote delivery error: ${err instanceof Error ? err.message : String(err)}. (#4.3.0)\n`);
  }
}

async function deliver(job: RemoteJob, opts: RemoteOptions): Promise<RemoteResult> {
  const host = splitAddress(job.recipient).domain;
  const settings = readSettings(opts.control, host);
  if (settings === null) return deferral(TEMP_CONTROL);
  const resolved = await resolveTargets(host, settings.route, opts.resolver ?? dnsPromises, opts.ipme ?? localAddresses());
  if (resolved.kind === 'temporary') return deferral(resolved.report);
  if (resolved.kind === 'permanent') return failure(resolved.report);
  const port = settings.route.kind === 'relay' ? settings.route.port : 25;
  for (const t of resolved.targets) {
    const sock = await openSocket(t.ip, port, settings.connectMs);
    if (sock === null) continue;
    const client = new SmtpClient(sock, settings.remoteMs);
    try {
      return await transaction(client, t.ip, job, settings.helo);
    } finally {
      client.close();
    }
  }
  return deferral(TEMP_NOCONN);
}

/** One SMTP transaction on an open connection (E.5, E.7). */
async function transaction(client: SmtpClient, ip: string, job: RemoteJob, helo: string): Promise<RemoteResult> {
  let critical = false;
  const quit = (kind: 'Z' | 'D', text: string, r?: Reply): RemoteResult => {
    client.quit();
    const report = `${text}.\n${r ? said(r) : ''}`;
    return kind === 'Z' ? deferral(report) : failure(report);
  };
  try {
    const greeting = await client.reply();
    if (greeting.code !== 220) return quit('Z', `Connected to ${ip} but greeting failed`, greeting);
    // EHLO first (quail needs it for STARTTLS and SIZE later); HELO when EHLO is refused.
    let hello = await client.command(`EHLO ${helo}`);
    if (hello.code !== 250) hello = await client.command(`HELO ${helo}`);
    if (hello.code !== 250) return quit('Z', `Connected to ${ip} but my name was rejected`, hello);
    const mail = await client.command(`MAIL FROM:<${quoteAddress(job.sender)}>`);
    if (mail.code >= 500) return quit('D', `Connected to ${ip} but sender was rejected`, mail);
    if (mail.code >= 400) return quit('Z', `Connected to ${ip} but sender was rejected`, mail);
    const rcpt = await client.command(`RCPT TO:<${quoteAddress(job.recipient)}>`);
    if (rcpt.code >= 400) {
      client.quit();
      const report = `${ip} does not like recipient.\n${said(rcpt)}Giving up on ${ip}.\n`;
      return rcpt.code >= 500 ? failure(report) : deferral(report);
    }
    const data = await client.command('DATA');
    if (data.code >= 500) return quit('D', `${ip} failed on DATA command`, data);
    if (data.code >= 400) return quit('Z', `${ip} failed on DATA command`, data);
    let sent: 'sent' | 'partial';
    try {
      sent = await client.data(createReadStream(job.messagePath));
    } catch (err) {
      if (err instanceof Dropped) throw err;
      client.close(); // the message could not be read: leave without the final dot
      return deferral(TEMP_READ);
    }
    if (sent === 'partial') {
      client.close(); // (no QUIT was sent, so this drops the connection) // as qmail: drop the connection without the final dot
      return failure(PERM_PARTIAL);
    }
    critical = true;
    const end = await client.reply();
    if (end.code >= 500) return quit('D', `${ip} failed after I sent the message`, end);
    if (end.code >= 400) return quit('Z', `${ip} failed after I sent the message`, end);
    client.quit();
    return { result: 'success', report: `${ip} accepted message.\n${said(end)}` };
  } catch (err) {
    if (!(err instanceof Dropped)) throw err;
    // RFC 5321 6.1: after the final dot the remote may have the message; qmail says so.
    return deferral(`Connected to ${ip} but connection died. ${critical ? 'Possible duplicate! ' : ''}(#4.4.2)\n`);
  }
}
