// DATA: stream the message into the queue while decoding; 250 only after the queue's commit point (B.7).
import { PassThrough } from 'node:stream';
import { errText } from '../core/index.js';
import type { QueueId } from '../queue/types.js';
import { chooseQueue, rulesFrom, type QueueChoice } from '../queues/index.js';
import { DataDecoder } from './data.js';
import { receivedLine } from './received.js';
import { R, problemReply, queueFailureReply, type Reply } from './replies.js';
import type { Session, Step } from './session.js';
type Injected = { readonly ok: true; readonly id: QueueId } | { readonly ok: false; readonly err: unknown };

export async function dataCommand(s: Session, fail: (r: Reply) => Promise<Step>): Promise<Step> {
  const tx = s.mail;
  if (!tx) return fail(R.mailFirst);
  if (tx.recipients.length === 0) return fail(R.rcptFirst);
  s.mail = undefined; // qmail: whatever happens now, the next message needs a new MAIL
  const env = s.deps.env;
  const body = new PassThrough();
  // abandon() destroys the stream with an error; the queue reports it through `injected`. Without a listener of
  // its own the 'error' event, when the queue is not (yet) reading, would be unhandled and end the process.
  body.on('error', () => undefined);
  const meta: Record<string, string> = { origin: 'smtp', ip: s.remoteIp, helo: s.helo ?? '', protocol: s.protocol };
  if (s.authUser !== undefined) meta['auth'] = s.authUser;
  let settled = false;
  const injected: Promise<Injected> = chosenQueue(s, tx.sender, tx.recipients)
    .then((choice) => {
      if (choice.why !== 'no rule matched') meta['queuerule'] = choice.why;
      return s.deps.queue.inject({
        sender: tx.sender,
        recipients: [...tx.recipients],
        data: body,
        injector: { kind: 'network' },
        meta,
        queueName: choice.queue,
      });
    })
    .then(
      (id): Injected => ({ ok: true, id }),
      (err: unknown): Injected => ({ ok: false, err }),
    )
    .finally(() => {
      settled = true;
    });
  const abandon = async (why: string): Promise<void> => {
    // Destroying the stream makes inject reject: nothing is kept (the queue's contract).
    body.destroy(new Error(`message abandoned: ${why}`));
    await injected;
  };
  const localHost = env['TCPLOCALHOST'] ?? env['TCPLOCALIP'];
  body.write(
    receivedLine(
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
    ),
    'latin1',
  );
  s.progress();
  s.send(R.goAhead);
  const dec = new DataDecoder(s.policy.databytes, s.policy.keepBareCr);
  for (;;) {
    const c = await s.reader.chunk(s.timeoutMs);
    if (c === 'eof') {
      await abandon('client went away during DATA');
      return 'eof';
    }
    if (c === 'timeout') {
      await abandon('timeout during DATA');
      s.send(R.timeout);
      return 'timeout';
    }
    const r = dec.push(c);
    if (dec.problem === 'bare-lf') {
      // qmail (notqmail) refuses at once and hangs up: nothing after the bare LF is ever read as SMTP.
      await abandon('bare LF');
      s.deps.log('smtp.refused', { ip: s.remoteIp, why: 'bare-lf', from: tx.sender });
      s.send(R.bareLf);
      return 'bare-lf';
    }
    if (r.out.length > 0 && dec.problem === undefined && !settled && !body.destroyed) {
      if (!body.write(r.out)) await drainOrSettled(body, injected);
    }
    if (r.done) {
      s.reader.unshift(c.subarray(r.consumed));
      break;
    }
  }
  if (dec.problem !== undefined) {
    await abandon(dec.problem);
    s.deps.log('smtp.refused', { ip: s.remoteIp, why: dec.problem, from: tx.sender, bytes: dec.bytes });
    return s.error(problemReply(dec.problem));
  }
  body.end();
  const res = await injected;
  if (!res.ok) {
    s.deps.log('smtp.queue-failed', { ip: s.remoteIp, from: tx.sender, error: errText(res.err) });
    s.send(queueFailureReply(res.err));
    return 'continue';
  }
  s.messages++;
  s.deps.log('smtp.queued', {
    id: res.id,
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
