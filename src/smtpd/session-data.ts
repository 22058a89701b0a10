// DATA: stream the message into the queue while decoding; 250 only after the queue's commit point (B.7).
import { PassThrough, Readable } from 'node:stream';
import { errText, QuailError } from '../core/index.js';
import type { NewMessage, QueueId } from '../queue/types.js';
import { AuthResultsStrip, Spool, type CheckPolicy, type MessageChecker } from './check.js';
import { chooseQueue, rulesFrom, type QueueChoice } from '../queues/index.js';
import { DataDecoder } from './data.js';
import { receivedLine } from './received.js';
import { R, problemReply, queueFailureReply, type Reply } from './replies.js';
import type { Session, Step } from './session.js';
type Injected = { readonly ok: true; readonly id: string } | { readonly ok: false; readonly err: unknown };

export async function dataCommand(s: Session, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  const tx = s.mail;
  if (!tx) return fail(R.mailFirst);
  if (tx.recipients.length === 0) return fail(R.rcptFirst);
  s.mail = undefined; // qmail: whatever happens now, the next message needs a new MAIL
  const env = s.deps.env;
  const meta: Record<string, string> = { origin: 'smtp', ip: s.remoteIp, helo: s.helo ?? '', protocol: s.protocol };
  if (s.authUser !== undefined) meta['auth'] = s.authUser;
  // a client that may relay: outbound DKIM signs its mail by the envelope sender's domain (src/msgauth)
  if (s.policy.relayClient !== undefined) meta['relay'] = '1';
  // QMAILQUEUE (tcp.smtp, or the listener's filter=), as qmail-smtpd: the program gets the message and must queue it
  // itself (qmail-queue(8)). Read here once; handOver gets it from the sink. Empty = none.
  const qq = env['QMAILQUEUE'] === '' ? undefined : env['QMAILQUEUE'];
  // the program that got the message in the end: QMAILQUEUE, or the matching queue rule's filter= (handOver sets it)
  const used: { program?: string } = {};
  const localHost = env['TCPLOCALHOST'] ?? env['TCPLOCALIP'];
  const received = receivedLine(
    {
      protocol: s.protocol,
      ...(env['TCPREMOTEHOST'] !== undefined ? { remoteHost: env['TCPREMOTEHOST'] } : {}),
      ...(s.helo !== undefined ? { helo: s.helo } : {}),
      // The AUTH login stands where qmail puts TCPREMOTEINFO (as qmail's SMTP AUTH patches do): `(joe@example.com@ip)`.
      ...(s.authUser !== undefined
        ? { remoteInfo: s.authUser }
        : env['TCPREMOTEINFO'] !== undefined
          ? { remoteInfo: env['TCPREMOTEINFO'] }
          : {}),
      ...(env['TCPREMOTEIP'] !== undefined ? { remoteIp: env['TCPREMOTEIP'] } : {}),
      ...(localHost !== undefined ? { localHost } : {}),
    },
    s.deps.clock(),
  );
  const message = { sender: tx.sender, recipients: [...tx.recipients], injector: { kind: 'network' as const }, meta };
  // Mail from the internet is checked; a client that authenticated or may relay is one of ours (its mail is
  // signed on the way out, src/msgauth): checking it would only fail it, and reject it under authcheck=reject.
  const ours = s.authUser !== undefined || s.policy.relayClient !== undefined;
  const checker = s.deps.checkPolicy !== 'off' && !ours ? s.deps.checker : undefined;
  const sink: DataSink =
    checker !== undefined && s.deps.checkPolicy !== undefined
      ? new CheckedSink(s, { ...message, program: qq, used }, received, checker, s.deps.checkPolicy)
      : new StreamSink(s, { ...message, program: qq, used }, received);
  s.progress();
  s.send(R.goAhead);
  const dec = new DataDecoder(s.policy.databytes, s.policy.keepBareCr);
  // Under stress each line of the message must arrive whole within the cap (Postfix's smtpd_per_record_deadline),
  // as a command line must (src/lineio Reader.line): the cap counts from the end of the last line received, so a
  // client trickling a byte at a time into DATA cannot keep its slot. Without stress `lineFrom` changes nothing.
  let lineFrom = Date.now();
  for (;;) {
    const c = await s.reader.chunk(s.timeoutMs, lineFrom);
    if (typeof c !== 'string' && c.includes(0x0a)) lineFrom = Date.now();
    if (c === 'eof') {
      await sink.abandon('client went away during DATA');
      return 'eof';
    }
    if (c === 'timeout') {
      await sink.abandon('timeout during DATA');
      s.send(R.timeout);
      return 'timeout';
    }
    const r = dec.push(c);
    if (dec.problem === 'bare-lf') {
      // qmail (notqmail) refuses at once and hangs up: nothing after the bare LF is ever read as SMTP.
      await sink.abandon('bare LF');
      s.deps.log('smtp.refused', { ip: s.remoteIp, why: 'bare-lf', from: tx.sender });
      s.send(R.bareLf);
      return 'bare-lf';
    }
    if (r.out.length > 0 && dec.problem === undefined) await sink.write(r.out);
    if (r.done) {
      s.reader.unshift(c.subarray(r.consumed));
      break;
    }
  }
  if (dec.problem !== undefined) {
    await sink.abandon(dec.problem);
    s.deps.log('smtp.refused', { ip: s.remoteIp, why: dec.problem, from: tx.sender, bytes: dec.bytes });
    return s.error(problemReply(dec.problem));
  }
  const res = await sink.finish();
  if (res.ok === 'refused') {
    s.deps.log('smtp.refused', { ip: s.remoteIp, why: res.why, from: tx.sender, bytes: dec.bytes });
    s.send(res.reply);
    return 'continue';
  }
  if (!res.ok) {
    s.deps.log('smtp.queue-failed', {
      ip: s.remoteIp,
      from: tx.sender,
      error: errText(res.err),
      // what lies behind it (a QMAILQUEUE program's stderr, a system error): for the log only, never the client
      ...(res.err instanceof Error && res.err.cause !== undefined ? { detail: errText(res.err.cause) } : {}),
      ...(used.program !== undefined ? { filter: used.program } : {}),
    });
    s.send(queueFailureReply(res.err));
    return 'continue';
  }
  s.messages++;
  s.unsent = 0; // a message accepted: the transactions before it were not an attack (limits.maxUnsent)
  s.deps.log('smtp.queued', {
    id: res.id,
    ...(used.program !== undefined ? { filter: used.program } : {}),
    ip: s.remoteIp,
    from: tx.sender,
    rcpts: tx.recipients.length,
    bytes: dec.bytes,
    protocol: s.protocol,
    ...(s.authUser !== undefined ? { auth: s.authUser } : {}),
    ...(meta['queuerule'] !== undefined ? { rule: meta['queuerule'] } : {}),
  });
  // qmail says `250 ok <time> qp <pid>`; quail names its queue id where qmail named the qmail-queue pid.
  s.send([250, '2.0.0', `ok ${Math.floor(s.deps.clock().getTime() / 1000)} qp ${res.id}`]);
  return 'continue';
}

type Finished =
  Injected | { readonly ok: 'refused'; readonly why: 'dmarc' | 'header-too-large'; readonly reply: Reply };

/**
 * The largest header section the checks are run on. The checker (mailauth) holds the header section in memory and
 * parses it, at about ten times its size: a 30 MB folded header grew the SMTP process by 200 MB, fifty of them
 * at once would exhaust the machine. Real header sections are a few KiB (Postfix's header_size_limit is 100 KiB);
 * a message past this one is refused whole (552) rather than accepted unchecked, which would let any sender pad
 * its way past a DMARC p=reject.
 */
const MAX_CHECKED_HEADER = 1 << 20;
/** meta stays this session's own object: handOver notes the queue rule in it for the smtp.queued event. */
type NewNetworkMessage = Omit<NewMessage, 'data' | 'meta'> & {
  readonly meta: Record<string, string>;
  /** The QMAILQUEUE program that gets the message instead of the queue (dataCommand read it), or undefined. */
  readonly program: string | undefined;
  /** Where handOver notes the program the message went to (QMAILQUEUE or a queue rule's filter=), for the log. */
  readonly used: { program?: string };
};

/** Where DATA's decoded bytes go: straight into the queue, or held for the inbound checks first. */
interface DataSink {
  write(b: Buffer): Promise<void>;
  /** Nothing is kept (the queue's contract when its stream is destroyed). */
  abandon(why: string): Promise<void>;
  finish(): Promise<Finished>;
}

/** Streams into the queue while the client sends: inject starts at once, its commit ends finish(). */
class StreamSink implements DataSink {
  private readonly body = new PassThrough();
  private settled = false;
  private readonly injected: Promise<Injected>;

  constructor(s: Session, message: NewNetworkMessage, received: string) {
    // abandon() destroys the stream with an error; the queue reports it through `injected`. Without a listener of
    // its own the 'error' event, when the queue is not (yet) reading, would be unhandled and end the process.
    this.body.on('error', () => undefined);
    this.injected = handOver(s, { ...message, data: this.body })
      .then(
        (id): Injected => ({ ok: true, id }),
        (err: unknown): Injected => ({ ok: false, err }),
      )
      .finally(() => {
        this.settled = true;
      });
    this.body.write(received, 'latin1');
  }

  async write(b: Buffer): Promise<void> {
    if (this.settled || this.body.destroyed) return;
    if (!this.body.write(b)) await drainOrSettled(this.body, this.injected);
  }

  async abandon(why: string): Promise<void> {
    this.body.destroy(new Error(`message abandoned: ${why}`));
    await this.injected;
  }

  finish(): Promise<Injected> {
    this.body.end();
    return this.injected;
  }
}

/**
 * Holds the message (Spool) while it arrives, without the Authentication-Results fields that claim this host;
 * at the end runs the checks, then refuses (policy `reject` and DMARC says reject) or queues it with the
 * verdict's header below quail's Received line.
 */
class CheckedSink implements DataSink {
  private readonly spool = new Spool();
  private readonly strip: AuthResultsStrip;
  private failed: unknown;
  private tooLarge = false;

  constructor(
    private readonly s: Session,
    private readonly message: NewNetworkMessage,
    private readonly received: string,
    private readonly checker: MessageChecker,
    private readonly policy: CheckPolicy,
  ) {
    this.strip = new AuthResultsStrip(s.deps.control.me() ?? s.deps.env['TCPLOCALHOST'] ?? 'localhost');
  }

  async write(b: Buffer): Promise<void> {
    if (this.failed !== undefined || this.tooLarge) return;
    try {
      const kept = this.strip.push(b);
      // the rest is read and dropped: the message will be refused
      if (this.strip.headerSeen > MAX_CHECKED_HEADER) this.tooLarge = true;
      else await this.spool.write(kept);
    } catch (err) {
      this.failed = err; // reported at the end (451), after the client has sent the rest
    }
  }

  async abandon(): Promise<void> {
    await this.spool.close();
  }

  async finish(): Promise<Finished> {
    try {
      if (this.failed !== undefined) return { ok: false, err: this.failed };
      if (this.tooLarge || this.strip.headerSeen > MAX_CHECKED_HEADER)
        return { ok: 'refused', why: 'header-too-large', reply: R.headerTooLarge };
      await this.spool.write(this.strip.end());
      const s = this.s;
      const host = s.deps.control.me() ?? s.deps.env['TCPLOCALHOST'] ?? 'localhost';
      const v = await this.checker.check(() => this.spool.stream(), {
        ip: s.remoteIp,
        helo: s.helo ?? '',
        sender: this.message.sender,
        host,
      });
      const refuse = v.reject !== undefined && this.policy === 'reject';
      s.deps.log('smtp.checked', {
        ip: s.remoteIp,
        from: this.message.sender,
        ...v.results,
        ...(this.strip.removed > 0 ? { removed: this.strip.removed } : {}),
        action: refuse ? 'reject' : 'accept',
      });
      if (refuse) return { ok: 'refused', why: 'dmarc', reply: [550, '5.7.1', `${v.reject} (#5.7.1)`] };
      const spool = this.spool;
      async function* data(received: string): AsyncGenerator<Buffer> {
        yield Buffer.from(received + v.header, 'latin1');
        for await (const c of spool.stream()) yield c as Buffer;
      }
      const id = await handOver(s, { ...this.message, data: Readable.from(data(this.received)) });
      return { ok: true, id };
    } catch (err) {
      return { ok: false, err };
    } finally {
      await this.spool.close();
    }
  }
}

/**
 * Into the queue chosen for it, or, when the session's QMAILQUEUE (tcp.smtp, the listener's filter=) or the matching
 * queue rule's filter= names a program, to that program, which queues it itself (qmail-queue(8)), with the chosen
 * queue in QUAIL_QUEUE (`quail queue-inject` joins it). A program without a filter runner is a temporary failure,
 * never an unfiltered 250.
 */
async function handOver(s: Session, msg: NewNetworkMessage & Pick<NewMessage, 'data'>): Promise<QueueId> {
  const { program: qq, used, ...m } = msg;
  const choice = await chosenQueue(s, m.sender, m.recipients);
  if (choice.why !== 'no rule matched') m.meta['queuerule'] = choice.why;
  const program = qq ?? choice.filter;
  if (program === undefined) return s.deps.queue.inject({ ...m, queueName: choice.queue });
  used.program = program;
  const filter = s.deps.filter;
  if (filter === undefined) throw new QuailError('a filter is set but this server runs no filters (#4.3.0)', true);
  return filter.run(
    program,
    {
      sender: m.sender,
      recipients: [...m.recipients],
      data: Buffer.isBuffer(m.data) ? Readable.from([m.data]) : m.data,
    },
    { ...s.deps.env, QUAIL_QUEUE: choice.queue },
  ) as Promise<QueueId>;
}

/**
 * The queue this message joins (control/queuerules; the listener's queue= first). An unreadable control/queues
 * or control/queuerules is a temporary failure of the message, as any unreadable control file (451).
 */
async function chosenQueue(s: Session, sender: string, recipients: readonly string[]): Promise<QueueChoice> {
  await Promise.resolve();
  return chooseQueue(rulesFrom(s.deps.control), {
    sender,
    recipients,
    ...(s.deps.listener !== undefined ? { listener: s.deps.listener } : {}),
    ...(s.deps.listenerQueue !== undefined ? { listenerQueue: s.deps.listenerQueue } : {}),
    ...(s.authUser !== undefined ? { auth: s.authUser } : {}),
  });
}

function drainOrSettled(body: PassThrough, injected: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      body.off('drain', done);
      body.off('close', done);
      resolve();
    };
    body.once('drain', done);
    body.once('close', done);
    void injected.then(done);
  });
}
