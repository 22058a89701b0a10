// datemail, mailsubj, qreceipt: qmail's tools that compose a message and hand it to sendmail, qmail-inject or the queue.
import { pipeline } from 'node:stream/promises';
import { quoteLocal, rfc5322Date } from '../core/index.js';
import { runChild } from './child.js';
import { die, type ToolIo } from './io.js';
import { queueMessage } from './queue.js';
import { readOn } from './stdin.js';

/** Runs `quail SUBCOMMAND args` with `head` and then standard input on its stdin; its exit status is ours. */
async function quailWith(io: ToolIo, name: string, argv: readonly string[], head: string): Promise<number> {
  const e = await runChild([...io.quail, ...argv], {
    env: { ...io.env, QUAIL_ROOT: io.root },
    stdin: 'pipe',
    stdout: 'inherit',
    onStdin: (w) => {
      w.write(head);
      pipeline(readOn(io.stdinFd), w).catch(() => undefined);
    },
  });
  if (e.kind === 'unable') return die(io, e.temporary ? 111 : 100, `${name}: fatal: unable to run quail: ${e.text}`);
  if (e.kind === 'crashed') return die(io, 111, `${name}: fatal: quail crashed`);
  return e.code;
}

/**
 * datemail(1): sendmail with a `Date:` field added in front (qmail's predate). qmail's predate writes the local
 * time with its zone; quail writes UTC as `-0000`, as every Date it makes (core's rfc5322Date).
 */
export function datemail(io: ToolIo): Promise<number> {
  const now = io.now?.() ?? new Date();
  return quailWith(io, 'datemail', ['sendmail', ...io.argv], `Date: ${rfc5322Date(now)}\n`);
}

/** mailsubj(1): `mailsubj subject recipient ...` sends standard input with that Subject and To, via qmail-inject. */
export function mailsubj(io: ToolIo): Promise<number> {
  const [subject, ...to] = io.argv;
  if (subject === undefined || to.length === 0)
    return Promise.resolve(die(io, 100, 'mailsubj: usage: mailsubj subject recipient ...'));
  // qmail's script writes `To: a b` (echo "$@"); quail separates the addresses with commas, which qmail-inject
  // reads as the same list and other readers too.
  return quailWith(io, 'mailsubj', ['inject'], `Subject: ${subject.replace(/\n/g, ' ')}\nTo: ${to.join(', ')}\n\n`);
}

/** The addresses of a Notice-Requested-Upon-Delivery-To field, unquoted (a light reading of token822). */
function noticeAddresses(value: string): string[] {
  const out: string[] = [];
  for (const part of value.replace(/\([^)]*\)/g, ' ').split(',')) {
    const angle = /<([^>]*)>/.exec(part);
    let a = (angle ? (angle[1] ?? '') : part).trim();
    const at = a.lastIndexOf('@');
    const local = at < 0 ? a : a.slice(0, at);
    if (local.startsWith('"') && local.endsWith('"') && local.length >= 2)
      a = local.slice(1, -1).replace(/\\(.)/g, '$1') + (at < 0 ? '' : a.slice(at));
    if (a !== '') out.push(a);
  }
  return out;
}

/** The header fields of a message (unfolded `name: value` pairs), read up to the blank line. */
function headerFields(text: string): { name: string; raw: string; value: string }[] {
  const end = text.indexOf('\n\n');
  const lines = (end < 0 ? text : text.slice(0, end)).split('\n');
  const fields: { name: string; raw: string; value: string }[] = [];
  for (const line of lines) {
    const last = fields[fields.length - 1];
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      last.raw += `\n${line}`;
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), raw: line, value: line.slice(colon + 1).trim() });
  }
  return fields;
}

const HEADER_LIMIT = 1024 * 1024;

/**
 * qreceipt(1): when the message's Notice-Requested-Upon-Delivery-To names ADDRESS exactly, queues a "success
 * notice" to $SENDER with the empty envelope sender (unless $SENDER is empty or `#@[]`). Exit 0 either way;
 * 100 usage, 111 temporary.
 */
export async function qreceipt(io: ToolIo): Promise<number> {
  const target = io.argv[0];
  const returnpath = io.env['SENDER'];
  if (target === undefined || returnpath === undefined)
    return die(io, 100, 'qreceipt: usage: qreceipt deliveryaddress');
  let text: string;
  try {
    text = await readHeader(io.stdinFd);
  } catch {
    return die(io, 111, 'qreceipt: fatal: read error');
  }
  const fields = headerFields(text);
  const wanted = fields.some(
    (f) => f.name === 'notice-requested-upon-delivery-to' && noticeAddresses(f.value).includes(target),
  );
  if (!wanted || returnpath === '' || returnpath === '#@[]') return 0;
  const at = returnpath.lastIndexOf('@');
  const quoted = at < 0 ? quoteLocal(returnpath) : quoteLocal(returnpath.slice(0, at)) + returnpath.slice(at);
  const messageId = fields.find((f) => f.name === 'message-id');
  const notice =
    `From: DELIVERY NOTICE SYSTEM <${quoted}>\nTo: <${quoted}>\nSubject: success notice\n\n` +
    `Hi! This is the qreceipt program. Your message was delivered to the\nfollowing address: ${target}. Thanks for asking.\n` +
    (messageId ? `Your ${messageId.raw}\n` : '');
  const r = await queueMessage(io.root, '', [returnpath], notice, null);
  if (!r.ok)
    return die(
      io,
      r.code,
      `qreceipt: fatal: ${r.code === 100 ? 'permanent' : 'temporary'} qmail-queue error: ${r.text}`,
    );
  return 0;
}

/** Standard input up to the end of the header (or a bounded prefix). */
async function readHeader(fd: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of readOn(fd)) {
    const b = chunk as Buffer;
    parts.push(b);
    size += b.length;
    const sofar = Buffer.concat(parts).toString('latin1');
    if (sofar.includes('\n\n') || size > HEADER_LIMIT) return sofar;
  }
  return Buffer.concat(parts).toString('latin1');
}
