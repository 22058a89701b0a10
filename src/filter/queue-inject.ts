// quail queue-inject: qmail-queue for quail's queue — message on fd 0, envelope on fd 1, qmail-queue's exit codes.
import { createReadStream, createWriteStream, mkdtempSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errText, isFullDisk } from '../core/index.js';
import { Control } from '../control/index.js';
import { openQueue, type Injector } from '../queue/index.js';
import { chooseQueue, DEFAULT_QUEUE, rulesFrom } from '../queues/index.js';

/** An envelope as qmail-queue reads it, or why it is not one (exit 91). */
export function parseEnvelope(b: Buffer): { sender: string; recipients: string[] } | string {
  const s = b.toString('latin1');
  if (!s.startsWith('F')) return 'the envelope does not start with F';
  const end = s.indexOf('\0');
  if (end < 0) return 'the sender is not ended by NUL';
  const sender = s.slice(1, end);
  const recipients: string[] = [];
  let i = end + 1;
  for (;;) {
    if (i >= s.length) return 'the envelope is not ended by an empty field';
    if (s[i] === '\0') break;
    if (s[i] !== 'T') return `field ${recipients.length + 2} does not start with T`;
    const e = s.indexOf('\0', i);
    if (e < 0) return 'a recipient is not ended by NUL';
    recipients.push(s.slice(i + 1, e));
    i = e + 1;
  }
  if (recipients.length === 0) return 'the envelope has no recipient';
  return { sender, recipients };
}

/** Reads fd until end of file, at most `max` bytes (a larger envelope is a format error). */
function readAll(fd: number, max: number): Buffer | 'too-long' {
  const parts: Buffer[] = [];
  let total = 0;
  const buf = Buffer.alloc(65536);
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return Buffer.concat(parts);
    total += n;
    if (total > max) return 'too-long';
    parts.push(Buffer.from(buf.subarray(0, n)));
  }
}

export interface QueueInjectIo {
  readonly root: string;
  readonly message: Readable;
  /** The descriptor to read the envelope from (1, in qmail-queue's protocol). */
  readonly envelopeFd: number;
  readonly env: NodeJS.ProcessEnv;
  readonly stderr: (text: string) => void;
  /** `--queue NAME`: the queue to join (else QUAIL_QUEUE from the environment, else control/queuerules). */
  readonly queue?: string;
}

/** 16 MB of envelope: qmail-queue has no limit; this one keeps a runaway writer from filling memory. */
const MAX_ENVELOPE = 16 * 1024 * 1024;

/** The message spooled to a private file and the envelope read; or qmail-queue's exit code after saying why. */
export interface Received {
  readonly spool: string;
  readonly sender: string;
  readonly recipients: string[];
}

/**
 * Reads the message from fd 0 into `<dir>/message` first (as qmail-queue reads the message before the envelope, so a
 * writer that sends the message first never deadlocks), then the envelope from fd 1.
 */
export async function receive(
  io: QueueInjectIo,
  dir: string,
  say: (code: number, what: string) => number,
): Promise<Received | number> {
  const spool = join(dir, 'message');
  try {
    await pipeline(io.message, createWriteStream(spool, { mode: 0o600 }));
  } catch (err) {
    return say(isFullDisk(err) ? 53 : 54, `cannot read the message: ${errText(err)}`);
  }
  let raw: Buffer | 'too-long';
  try {
    raw = readAll(io.envelopeFd, MAX_ENVELOPE);
  } catch (err) {
    return say(54, `cannot read the envelope on fd ${io.envelopeFd}: ${errText(err)}`);
  }
  if (raw === 'too-long') return say(91, 'envelope format error: longer than 16 MB');
  const envelope = parseEnvelope(raw);
  if (typeof envelope === 'string') return say(91, `envelope format error: ${envelope}`);
  return { spool, ...envelope };
}

/** Queues a received message, `prefix` (header lines) in front; qmail-queue's exit code. */
export async function enqueue(
  io: QueueInjectIo,
  r: Received,
  say: (code: number, what: string) => number,
  prefix = '',
): Promise<number> {
  let queue;
  try {
    queue = await openQueue(io.root, { create: false });
  } catch (err) {
    return say(61, errText(err));
  }
  try {
    const uid = process.getuid?.() ?? 0;
    // qmail-queue: "invoked from network" for qmaild, whose qmail-smtpd wrote its own Received line; quail's
    // SMTP child runs as the queue's owner and writes its own, so that account gets no second line.
    const injector: Injector =
      statSync(join(io.root, 'queue')).uid === uid ? { kind: 'network' } : { kind: 'uid', uid };
    const meta: Record<string, string> = { origin: 'queue-inject' };
    const ip = io.env['TCPREMOTEIP'];
    if (ip !== undefined && ip !== '') meta['ip'] = ip;
    const choice = queueFor(io, r);
    if (typeof choice !== 'string') return say(choice.code, choice.why);
    const body = createReadStream(r.spool);
    const data = prefix === '' ? body : Readable.from(withPrefix(prefix, body));
    await queue.inject({ sender: r.sender, recipients: r.recipients, data, injector, meta, queueName: choice });
    return 0; // silent, as qmail-queue
  } catch (err) {
    return say(isFullDisk(err) ? 53 : 62, `cannot queue: ${errText(err)}`);
  } finally {
    queue.close();
  }
}

/**
 * The queue this message joins: `--queue`, else QUAIL_QUEUE (what smtpd or inject chose before the program ran), else
 * control/queuerules by sender and recipients, so a wrapper that calls `quail queue-inject` keeps the queue choice.
 * A name control/queues does not define is exit 61, as an unreadable control/queues or control/queuerules
 * (qmail-queue: trouble with the queue; the caller tries again later).
 */
function queueFor(io: QueueInjectIo, r: Received): string | { code: number; why: string } {
  try {
    const rules = rulesFrom(new Control(io.root));
    const fromEnv = io.env['QUAIL_QUEUE'];
    const named = io.queue ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
    if (named !== undefined)
      return rules.known.has(named)
        ? named
        : { code: 61, why: `queue ${named} is not defined in control/queues (its names, and ${DEFAULT_QUEUE})` };
    return chooseQueue(rules, { sender: r.sender, recipients: r.recipients }).queue;
  } catch (err) {
    return { code: 61, why: `cannot read control/queues or control/queuerules: ${errText(err)}` };
  }
}

async function* withPrefix(prefix: string, body: Readable): AsyncGenerator<Buffer> {
  yield Buffer.from(prefix, 'latin1');
  for await (const c of body) yield c as Buffer;
}

/** Runs `body` with a private temporary directory and a `say` that reports on stderr as NAME. */
export async function withSpoolDir(
  io: QueueInjectIo,
  name: string,
  body: (dir: string, say: (code: number, what: string) => number) => Promise<number>,
): Promise<number> {
  const say = (code: number, what: string): number => {
    io.stderr(`${name}: ${what}\n`);
    return code;
  };
  const dir = mkdtempSync(join(tmpdir(), 'quail-queue-inject-'));
  try {
    return await body(dir, say);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One qmail-queue run: receive, then queue. Resolves with qmail-queue's exit code. */
export function queueInject(io: QueueInjectIo): Promise<number> {
  return withSpoolDir(io, 'quail queue-inject', async (dir, say) => {
    const r = await receive(io, dir, say);
    return typeof r === 'number' ? r : enqueue(io, r, say);
  });
}
