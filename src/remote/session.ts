// The SMTP dialogue on one connection: greeting, EHLO/HELO, STARTTLS, then transactions of several recipients.
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { errText, quoteAddress, type DeliveryResult } from '../core/index.js';
import { Dropped, ehloKeywords, type Reply, type SmtpClient } from './client.js';
import type { Classification } from './classify.js';
import { MessageFile, type EightBitCache } from './message.js';

/** STARTTLS policy for a destination (control/tlsdestinations). */
export type TlsPolicy =
  | { readonly mode: 'may' } // STARTTLS when offered, certificate not checked; plaintext if the handshake fails
  | { readonly mode: 'none' } // never STARTTLS
  | { readonly mode: 'verify'; readonly ca?: Buffer }; // required; certificate checked (system CAs or this CA)

/** What one transaction carries: one message, one sender, its recipients on this destination. */
export interface Envelope {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly messagePath: string;
  /** Header lines sent before the file's bytes (LF line ends, ASCII): the DKIM-Signature. */
  readonly prefix?: string;
  /** Where the message starts in the file (default 0). */
  readonly offset?: number;
}

export type Classifier = (code: number, lines: readonly string[]) => Classification;

const TEMP_READ = 'Unable to read message. (#4.3.0)\n';
const PERM_PARTIAL = 'SMTP cannot transfer messages with partial final lines. (#5.6.2)\n';

/** A positive completion (2xx): what MAIL, RCPT and the end of the message must get; a 3xx there is no success. */
const positive = (r: Reply): boolean => r.code >= 200 && r.code < 300;

/** At most this much of a reply's text goes into a report (qmail-remote keeps 5,000 bytes: HUGESMTPTEXT). */
const SAID_BYTES = 5000;

/**
 * "Remote host said: " followed by every line of the reply (qmail's outsmtptext), made safe for the log, the queue's
 * record and the bounce: every byte that is not printable ASCII or a tab (NUL, ESC, other controls, 8-bit or invalid UTF-8)
 * becomes `?`, and the text stops after SAID_BYTES, `...` saying so. A reply may have 500 lines of 4 KiB.
 */
function said(r: Reply): string {
  let text = r.lines.join('\n').replace(/[^\n\t\x20-\x7e]/g, '?');
  if (text.length > SAID_BYTES) text = `${text.slice(0, SAID_BYTES)}...`;
  return `Remote host said: ${text}\n`;
}

/** A reply's meaning after the rules file; the report says so when a rule changed it. */
function judged(classify: Classifier, r: Reply, report: string): DeliveryResult {
  const c = classify(r.code, r.lines);
  const note = c.reclassified ? `Classified ${c.result} (${c.category}).\n` : '';
  return { result: c.result === 'permanent' ? 'failure' : 'deferral', report: report + note };
}

export type Opened =
  | { readonly kind: 'ok'; readonly ext: ReadonlyMap<string, string> }
  /** The connection is unusable; `tlsFailed` asks for a plaintext retry when the policy allows it. */
  | { readonly kind: 'failed'; readonly result: DeliveryResult; readonly tlsFailed?: boolean };

export interface OpenParams {
  readonly ip: string;
  /** The name the certificate must carry (the MX or relay host name). */
  readonly servername: string;
  readonly helo: string;
  readonly tls: TlsPolicy;
  /** false after a failed opportunistic handshake: this attempt stays in plaintext. */
  readonly tryTls: boolean;
}

/** Greeting, EHLO (HELO when refused), STARTTLS as the policy says, EHLO again over TLS (RFC 3207 4.2). */
export async function openSession(client: SmtpClient, p: OpenParams): Promise<Opened> {
  const { ip } = p;
  const fail = (text: string, r?: Reply): Opened => {
    client.quit();
    return { kind: 'failed', result: { result: 'deferral', report: `${text}.\n${r ? said(r) : ''}` } };
  };
  try {
    const greeting = await client.reply();
    if (greeting.code !== 220) return fail(`Connected to ${ip} but greeting failed`, greeting);
    let hello = await client.command(`EHLO ${p.helo}`);
    if (hello.code !== 250) hello = await client.command(`HELO ${p.helo}`);
    if (hello.code !== 250) return fail(`Connected to ${ip} but my name was rejected`, hello);
    let ext = ehloKeywords(hello);
    const offered = ext.has('STARTTLS');
    if (p.tls.mode === 'verify' && !offered) {
      return fail(`Connected to ${ip} but TLS is required for this destination and STARTTLS was not offered (#4.7.5)`);
    }
    if (offered && p.tls.mode !== 'none' && p.tryTls) {
      const go = await client.command('STARTTLS');
      if (go.code !== 220) {
        if (p.tls.mode === 'verify') return fail(`Connected to ${ip} but STARTTLS was refused (#4.7.5)`, go);
      } else {
        const opts: ConnectionOptions =
          p.tls.mode === 'verify'
            ? { servername: p.servername, rejectUnauthorized: true, ...(p.tls.ca ? { ca: p.tls.ca } : {}) }
            : { servername: p.servername, rejectUnauthorized: false };
        try {
          await client.startTls(opts);
        } catch (err) {
          const why = tlsWhy(err);
          return {
            kind: 'failed',
            tlsFailed: p.tls.mode === 'may',
            result: {
              result: 'deferral',
              report: `Connected to ${ip} but the TLS handshake failed: ${why} (#4.7.5).\n`,
            },
          };
        }
        hello = await client.command(`EHLO ${p.helo}`);
        if (hello.code !== 250) return fail(`Connected to ${ip} but my name was rejected`, hello);
        ext = ehloKeywords(hello);
      }
    }
    return { kind: 'ok', ext };
  } catch (err) {
    if (!(err instanceof Dropped)) throw err;
    client.close();
    return {
      kind: 'failed',
      result: { result: 'deferral', report: `Connected to ${ip} but connection died${why(err)}. (#4.4.2)\n` },
    };
  }
}

/**
 * A failed handshake in one line for the report: OpenSSL's reason (`wrong version number`) rather than its message,
 * which carries a newline, error codes and the path of a source file of node's OpenSSL; at most 200 characters.
 */
function tlsWhy(err: unknown): string {
  const reason = (err as { reason?: unknown } | null)?.reason;
  const text = typeof reason === 'string' && reason !== '' ? reason : (errText(err).split('\n')[0] ?? '');
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** Why quail dropped the connection itself, for the report (empty when the connection broke or timed out). */
const why = (err: Dropped): string => (err.detail !== undefined ? ` (${err.detail})` : '');

const nonAscii = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) > 0x7f);

/** The permanent failure for a non-ASCII address to a server without SMTPUTF8 (RFC 6531 3.2, 5.6.7). */
const noUtf8 = (ip: string, addr: string, role: 'sender' | 'recipient'): DeliveryResult => ({
  result: 'failure',
  report: `${ip} does not support SMTPUTF8 and the ${role} address ${addr} is not ASCII. (#5.6.7)\n`,
});

/** The MAIL FROM parameters: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), each when offered. */
async function mailParams(
  env: Envelope,
  ext: ReadonlyMap<string, string>,
  size: number,
  eightBit: () => Promise<boolean>,
): Promise<string> {
  let params = ext.has('SIZE') ? ` SIZE=${size}` : '';
  if (ext.has('8BITMIME') && (await eightBit())) params += ' BODY=8BITMIME';
  if (ext.has('SMTPUTF8') && [env.sender, ...env.recipients].some(nonAscii)) params += ' SMTPUTF8';
  return params;
}

export interface TransactionOutcome {
  /** One result per envelope recipient, in order. */
  readonly results: DeliveryResult[];
  /** The connection may carry another transaction (it ended cleanly and is still open). */
  readonly reusable: boolean;
  /** A pooled connection turned out dead before the server answered anything: redo on a fresh one. */
  readonly stale?: boolean;
}

/**
 * One transaction (E.5, E.7) for every recipient of `env`, with per-recipient results and qmail's report
 * texts. PIPELINING (RFC 2920) sends MAIL and every RCPT in one write; SIZE (RFC 1870) is declared and a
 * message above the server's limit is not sent; a message with any byte >= 0x80 is declared BODY=8BITMIME
 * (RFC 6152) when offered, and sent as it is when not (as qmail does); SMTPUTF8 (RFC 6531) is requested for
 * non-ASCII addresses when offered, and when not, such an address is a permanent failure (#5.6.7): the
 * sender for every recipient, a recipient for itself only (control/smtputf8 `qmail`: sent as it is instead). The message file is opened once (message.ts): SIZE,
 * the 8-bit scan and DATA all read that descriptor; a file that cannot be opened defers every recipient (#4.3.0)
 * with nothing sent.
 */
export async function transaction(
  client: SmtpClient,
  ip: string,
  env: Envelope,
  ext: ReadonlyMap<string, string>,
  classify: Classifier,
  reused: boolean,
  eightBits?: EightBitCache,
  opts: { readonly sendEightBitAddresses?: boolean } = {},
): Promise<TransactionOutcome> {
  // control/smtputf8 `qmail`: no address is refused for want of SMTPUTF8 (qmail-remote sends the bytes)
  const refusesNonAscii = (addr: string): boolean =>
    !ext.has('SMTPUTF8') && !opts.sendEightBitAddresses && nonAscii(addr);
  const n = env.recipients.length;
  const all = (r: DeliveryResult): DeliveryResult[] => Array.from({ length: n }, () => r);
  const stop = (r: DeliveryResult): TransactionOutcome => {
    client.quit();
    return { results: all(r), reusable: false };
  };
  // Recipients the server cannot take (non-ASCII without SMTPUTF8) are answered here; the rest go.
  const early: Array<DeliveryResult | undefined> = env.recipients.map((r) =>
    refusesNonAscii(r) ? noUtf8(ip, r, 'recipient') : undefined,
  );
  const sendable = env.recipients.filter((_, i) => early[i] === undefined);
  /** Results of the sent recipients (in order) put back in envelope order beside the early ones. */
  const merge = (sent: readonly DeliveryResult[]): DeliveryResult[] => {
    let k = 0;
    return early.map(
      (e) =>
        e ?? sent[k++] ?? { result: 'deferral', report: 'Unexpected remote delivery error: no result. (#4.3.0)\n' },
    );
  };
  const sendAll = (r: DeliveryResult): DeliveryResult[] => merge(sendable.map(() => r));
  let critical = false;
  let answered = false;
  let msg: MessageFile;
  try {
    msg = await MessageFile.open(env.messagePath, env.offset); // once: SIZE, the 8-bit scan and DATA all read this
  } catch {
    return { results: all({ result: 'deferral', report: TEMP_READ }), reusable: true }; // nothing was sent
  }
  try {
    const prefix = Buffer.from(env.prefix ?? '', 'latin1');
    const size = msg.size + prefix.length;
    const limit = Number(ext.get('SIZE') ?? '0');
    if (ext.has('SIZE') && limit > 0 && size > limit) {
      return stop({
        result: 'failure',
        report: `${ip} does not accept messages of ${size} bytes (SIZE ${limit}). (#5.3.4)\n`,
      });
    }
    if (refusesNonAscii(env.sender)) return { results: all(noUtf8(ip, env.sender, 'sender')), reusable: true };
    if (sendable.length === 0) return { results: merge([]), reusable: true };
    let params: string;
    try {
      params = await mailParams(env, ext, size, () => msg.eightBit(eightBits));
    } catch {
      return stop({ result: 'deferral', report: TEMP_READ });
    }
    const mailLine = `MAIL FROM:<${quoteAddress(env.sender)}>${params}`;
    const rcptLines = sendable.map((r) => `RCPT TO:<${quoteAddress(r)}>`);
    let mail: Reply;
    const rcpts: Reply[] = [];
    // With PIPELINING, DATA closes the group (RFC 2920 3.1): its reply is read after the others', and the body goes
    // only when some recipient was accepted and DATA got its 354.
    let pipedData: Reply | undefined;
    if (ext.has('PIPELINING')) {
      await client.send(`${[mailLine, ...rcptLines].join('\r\n')}\r\nDATA\r\n`);
      mail = await client.reply();
      answered = true;
      for (let i = 0; i < rcptLines.length; i++) rcpts.push(await client.reply());
      pipedData = await client.reply();
      client.inSync(); // more replies than the group had commands: which answered what is not known
    } else {
      mail = await client.command(mailLine);
      answered = true;
      if (positive(mail)) for (const l of rcptLines) rcpts.push(await client.command(l));
    }
    if (!positive(mail)) {
      client.quit();
      return {
        results: sendAll(judged(classify, mail, `Connected to ${ip} but sender was rejected.\n${said(mail)}`)),
        reusable: false,
      };
    }
    const results: Array<DeliveryResult | undefined> = rcpts.map((r) =>
      !positive(r) ? judged(classify, r, `${ip} does not like recipient.\n${said(r)}Giving up on ${ip}.\n`) : undefined,
    );
    const accepted = results.filter((r) => r === undefined).length;
    if (accepted === 0) {
      // A server that answered the pipelined DATA with 354 although it took no recipient is waiting for a message:
      // the connection is dropped, so that it ends the transaction with nothing sent (neither this message's bytes
      // nor an empty one).
      if (pipedData !== undefined && pipedData.code === 354) {
        client.close();
        return { results: merge(results as DeliveryResult[]), reusable: false };
      }
      const rset = await client.command('RSET');
      return { results: merge(results as DeliveryResult[]), reusable: rset.code === 250 };
    }
    const fill = (r: DeliveryResult): DeliveryResult[] => merge(results.map((x) => x ?? r));
    const data = pipedData ?? (await client.command('DATA'));
    // Only 354 asks for the message (qmail-remote sends it after any reply below 400: deliberately stricter). A server
    // that answered 250 is not reading a message: the message's lines would reach it as commands.
    if (data.code !== 354) {
      client.quit();
      return { results: fill(judged(classify, data, `${ip} failed on DATA command.\n${said(data)}`)), reusable: false };
    }
    let sent: 'sent' | 'partial';
    try {
      sent = await client.data(prefix.length > 0 ? withPrefix(prefix, msg.body()) : msg.body());
    } catch (err) {
      if (err instanceof Dropped) throw err;
      client.close(); // the message could not be read: leave without the final dot
      return { results: fill({ result: 'deferral', report: TEMP_READ }), reusable: false };
    }
    if (sent === 'partial') {
      client.close(); // as qmail: drop the connection without the final dot
      return { results: fill({ result: 'failure', report: PERM_PARTIAL }), reusable: false };
    }
    critical = true;
    const end = await client.reply();
    if (!positive(end)) {
      client.quit();
      return {
        results: fill(judged(classify, end, `${ip} failed after I sent the message.\n${said(end)}`)),
        reusable: false,
      };
    }
    return { results: fill({ result: 'success', report: `${ip} accepted message.\n${said(end)}` }), reusable: true };
  } catch (err) {
    if (!(err instanceof Dropped)) throw err;
    client.close();
    if (reused && !answered) return { results: [], reusable: false, stale: true };
    // RFC 5321 6.1: after the final dot the remote may have the message; qmail says so. Retried, never bounced.
    const r: DeliveryResult = {
      result: 'deferral',
      report: `Connected to ${ip} but connection died${why(err)}. ${critical ? 'Possible duplicate! ' : ''}(#4.4.2)\n`,
    };
    return { results: sendAll(r), reusable: false };
  } finally {
    await msg.close().catch(() => undefined); // after any read still in progress; a failed close changes no result
  }
}

/** The prefix, then every chunk of the body, as one stream (errors of the body stay errors of the stream). */
function withPrefix(prefix: Buffer, body: Readable | Buffer): Readable | Buffer {
  if (Buffer.isBuffer(body)) return Buffer.concat([prefix, body]);
  async function* chunks(): AsyncGenerator<Buffer> {
    yield prefix;
    for await (const c of body) yield c as Buffer;
  }
  return Readable.from(chunks());
}
