// Getting a locally written message into the queue: qmail-inject's argument handling, header pass, streamed body.
import { Readable } from 'node:stream';
import { errText, permError, QuailError, tempError } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { NewMessage, QueueId, QueueStore } from '../queue/index.js';
import { chooseQueue, rulesFrom, type QueueChoice } from '../queues/index.js';
import { HeaderRewriter, validField } from './header.js';
import { injectSettings, makeRewriter, type InjectEnv, type InjectSettings } from './rewrite.js';

/** Where the recipients come from (qmail-inject -a, -h, -H; default: arguments if any, else the header). */
export type RecipientSource = 'default' | 'args' | 'header' | 'both';

export interface InjectArgs {
  readonly source: RecipientSource;
  /** -f: the envelope sender as given (rewritten like any address; '' or '<>' is the null sender). */
  readonly sender?: string;
  readonly recipients: readonly string[];
  /** -n: print the message instead of queueing it. */
  readonly print?: boolean;
  /** -s: ignore Return-Path fields. */
  readonly deleteReturnPath?: boolean;
}

/** qmail-inject's options, getopt style (`-fSENDER` or `-f SENDER`, clustered flags, `--`). */
export function parseInjectArgv(argv: readonly string[]): InjectArgs {
  let source: RecipientSource = 'default';
  let sender: string | undefined;
  let print = false;
  let deleteReturnPath = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j] as string;
      if (c === 'f') {
        const rest = arg.slice(j + 1);
        if (rest !== '') sender = rest;
        else if (i + 1 < argv.length) sender = argv[++i];
        else throw permError('option -f needs a sender address (use -f "" for the null sender)');
        break;
      }
      if (c === 'a') source = 'args';
      else if (c === 'h') source = 'header';
      else if (c === 'H') source = 'both';
      else if (c === 'A') source = 'default';
      else if (c === 'n') print = true;
      else if (c === 'N') print = false;
      else if (c === 's') deleteReturnPath = true;
      else throw permError(`unknown option -${c} (usage: inject [-f SENDER] [-a|-h|-H] [-n] [-s] [RECIPIENT...])`);
    }
  }
  return { source, ...(sender === undefined ? {} : { sender }), recipients: argv.slice(i), print, deleteReturnPath };
}

export interface PrepareOptions {
  readonly control: Control;
  /** The environment qmail-inject would see (QMAIL*, USER, NAME...): pass process.env or a scenario's env. */
  readonly env: InjectEnv;
  /** Clock in milliseconds (Date and Message-ID use whole seconds). */
  readonly now?: () => number;
  /** The pid in Message-IDs. */
  readonly pid?: number;
}

export interface PreparedMessage {
  readonly sender: string;
  readonly recipients: string[];
  /** The rewritten header, then the body as it streams from the input (ending in "\n"). */
  readonly data: Readable;
  readonly settings: InjectSettings;
  /** The queue it joins (control/queuerules: sender and recipient rules apply; no listener, no AUTH). */
  readonly queue?: QueueChoice;
}

type ChunkIterator = AsyncIterator<Buffer | string>;

const asBuffer = (c: Buffer | string): Buffer => (typeof c === 'string' ? Buffer.from(c, 'latin1') : c);

/**
 * Reads the header (the only part kept in memory), rewrites it and returns the envelope plus a stream of the
 * new message. Header syntax errors and bad addresses are permanent QuailErrors.
 */
export async function prepareMessage(
  input: Readable,
  args: InjectArgs,
  opts: PrepareOptions,
): Promise<PreparedMessage> {
  let settings = injectSettings(opts.control, opts.env);
  if (args.deleteReturnPath) settings = { ...settings, flags: { ...settings.flags, deleteReturnPath: true } };
  let rewriter;
  try {
    rewriter = makeRewriter(settings);
  } catch (err) {
    throw permError(`${(err as Error).message} (check control/defaulthost, defaultdomain, plusdomain)`);
  }
  const envelope = (a: string, what: string): string => {
    const r = rewriter.envelope(a);
    if (r === null) throw permError(`unable to parse ${what}: ${a}`);
    return r;
  };
  const source = args.source === 'default' ? (args.recipients.length > 0 ? 'args' : 'header') : args.source;
  const argRecipients = source === 'header' ? [] : args.recipients.map((r) => envelope(r, 'address'));
  let sender: string | undefined;
  if (args.sender !== undefined)
    sender = args.sender === '' || args.sender === '<>' ? '' : envelope(args.sender, 'sender address');
  const time = Math.floor((opts.now ?? Date.now)() / 1000);
  const header = new HeaderRewriter({
    settings,
    rewriter,
    time,
    pid: opts.pid ?? process.pid,
    fromHeaders: source !== 'args',
    sender,
  });

  const it: ChunkIterator = input[Symbol.asyncIterator]() as ChunkIterator;
  const { bodyStart, ended } = await readHeader(it, header);
  const done = header.finish();
  const head = Buffer.from(done.text, 'latin1');
  const recipients = [...argRecipients, ...done.recipients];
  // The webmail case of seed 003: one sendmail for every domain, the queue chosen by the same rules as SMTP's.
  const queue = chooseQueue(rulesFrom(opts.control), { sender: done.sender, recipients });
  return {
    sender: done.sender,
    recipients,
    data: Readable.from(streamBody(head, bodyStart, ended ? undefined : it)),
    settings,
    queue,
  };
}

/**
 * Feeds header fields to `header` until the header ends: at a blank line, at a line that is not a field (a
 * blank line is then inserted), or at the end of input. `From ` at the start becomes an `MBOX-Line:` field.
 */
async function readHeader(it: ChunkIterator, header: HeaderRewriter): Promise<{ bodyStart: Buffer; ended: boolean }> {
  let buf = '';
  let field: string | undefined;
  let ended = false;
  for (;;) {
    let nl = buf.indexOf('\n');
    while (nl < 0 && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else buf += asBuffer(r.value).toString('latin1');
      nl = buf.indexOf('\n');
    }
    if (nl < 0 && buf === '') {
      if (field !== undefined) header.field(field);
      return { bodyStart: Buffer.alloc(0), ended: true };
    }
    // A last line without "\n" is read as if it had one.
    const line = nl < 0 ? `${buf}\n` : buf.slice(0, nl + 1);
    buf = nl < 0 ? '' : buf.slice(nl + 1);
    if (field !== undefined && (line[0] === ' ' || line[0] === '\t')) {
      field += line;
      continue;
    }
    if (field !== undefined) header.field(field);
    field = undefined;
    if (line === '\n') return { bodyStart: Buffer.from(line + buf, 'latin1'), ended };
    if (line.startsWith('From ')) field = `MBOX-Line: ${line}`;
    else if (validField(line)) field = line;
    else return { bodyStart: Buffer.from(`\n${line}${buf}`, 'latin1'), ended };
  }
}

/** The new header, the body read so far, then the rest of the input; a missing final newline is added. */
async function* streamBody(head: Buffer, start: Buffer, rest: ChunkIterator | undefined): AsyncGenerator<Buffer> {
  yield head;
  let last = -1;
  if (start.length > 0) {
    last = start[start.length - 1] as number;
    yield start;
  }
  if (rest) {
    for (;;) {
      const r = await rest.next();
      if (r.done) break;
      const b = asBuffer(r.value);
      if (b.length === 0) continue;
      last = b[b.length - 1] as number;
      yield b;
    }
  }
  if (last !== -1 && last !== 0x0a) yield Buffer.from('\n');
}

/**
 * The part of a QueueStore injection needs (a recording store in conformance tests implements just this).
 * The queue wakes the scheduler itself after each commit, so no trigger() is sent from here.
 */
export type InjectTarget = Pick<QueueStore, 'inject'>;

export interface InjectResult {
  readonly id: QueueId;
  readonly sender: string;
  readonly recipients: readonly string[];
}

/**
 * Commits a prepared message: refuses one without recipients (permanent), hands it to the queue (resolves once
 * durable; the queue then wakes the scheduler). Queue failures other than QuailErrors are temporary.
 */
export async function commitMessage(target: InjectTarget, m: PreparedMessage, uid?: number): Promise<InjectResult> {
  if (m.recipients.length === 0) {
    m.data.destroy();
    throw permError('no recipients: give them as arguments, or in To:, Cc: or Bcc: fields (sendmail -t)');
  }
  const msg: NewMessage = {
    sender: m.sender,
    recipients: m.recipients,
    data: m.data,
    injector: { kind: 'uid', uid: uid ?? process.getuid?.() ?? 0 },
    meta: {
      origin: 'inject',
      ...(m.queue !== undefined && m.queue.why !== 'no rule matched' ? { queuerule: m.queue.why } : {}),
    },
    ...(m.queue !== undefined ? { queueName: m.queue.queue } : {}),
  };
  let id: QueueId;
  try {
    id = await target.inject(msg);
  } catch (err) {
    if (err instanceof QuailError) throw err;
    throw tempError(`unable to queue the message: ${errText(err)}`, err);
  }
  return { id, sender: m.sender, recipients: m.recipients };
}

/** prepareMessage, then commitMessage. */
export async function injectMessage(
  target: InjectTarget,
  input: Readable,
  args: InjectArgs,
  opts: PrepareOptions & { readonly uid?: number },
): Promise<InjectResult> {
  return commitMessage(target, await prepareMessage(input, args, opts), opts.uid);
}
