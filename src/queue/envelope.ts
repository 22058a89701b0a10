// The envelope file (version 1, JSON) and qmail-queue's Received line: encode, decode, validate.
import { DELIVERY_STATUSES, isChannel, rfc5322Date } from '../core/index.js';
import type { Injector, QueueId, QueuedMessage, RecipientState } from './types.js';
import { isQueueId } from './layout.js';

const ENVELOPE_VERSION = 1;

/** What env/<id> holds: the QueuedMessage plus the message checksum. */
export interface Envelope extends QueuedMessage {
  readonly sha256: string;
}

const STATUSES = new Set(['todo', 'pending', 'done', 'failed']);
const RESULTS: ReadonlySet<string> = new Set(DELIVERY_STATUSES);

export function encodeEnvelope(e: Envelope): string {
  return `${JSON.stringify(envelopeObject(e))}\n`;
}

/** The versioned JSON object of an envelope (env/ files and export records). */
export function envelopeObject(e: Envelope): Record<string, unknown> {
  return {
    v: ENVELOPE_VERSION,
    id: e.id,
    birth: e.birth,
    sender: e.sender,
    recipients: e.recipients,
    held: e.held,
    size: e.size,
    sha256: e.sha256,
    meta: e.meta,
    queueName: e.queueName,
  };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isNat = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function decodeRecipient(x: unknown): RecipientState | string {
  if (!isObj(x)) return 'recipient is not an object';
  const { original, channel, address, status, attempts, nextAttempt, lastResult, lastReport } = x;
  if (typeof original !== 'string') return 'recipient.original';
  if (channel !== undefined && !isChannel(channel)) return 'recipient.channel';
  if (address !== undefined && typeof address !== 'string') return 'recipient.address';
  if (typeof status !== 'string' || !STATUSES.has(status)) return 'recipient.status';
  if (!isNat(attempts)) return 'recipient.attempts';
  if (nextAttempt !== undefined && !isNat(nextAttempt)) return 'recipient.nextAttempt';
  if (lastResult !== undefined && (typeof lastResult !== 'string' || !RESULTS.has(lastResult)))
    return 'recipient.lastResult';
  if (lastReport !== undefined && typeof lastReport !== 'string') return 'recipient.lastReport';
  return {
    original,
    status: status as RecipientState['status'],
    attempts,
    ...(channel !== undefined ? { channel } : {}),
    ...(address !== undefined ? { address } : {}),
    ...(nextAttempt !== undefined ? { nextAttempt } : {}),
    ...(lastResult !== undefined ? { lastResult: lastResult as RecipientState['lastResult'] } : {}),
    ...(lastReport !== undefined ? { lastReport } : {}),
  };
}

/** Parses a parsed-JSON envelope; returns the reason when it is damaged. */
export function decodeEnvelopeObject(o: unknown, expectId?: QueueId): Envelope | string {
  if (!isObj(o)) return 'not a JSON object';
  if (o['v'] !== ENVELOPE_VERSION) return `unknown envelope version ${JSON.stringify(o['v'])}`;
  const { id, birth, sender, recipients, held, size, sha256, meta, queueName } = o;
  if (typeof id !== 'string' || !isQueueId(id)) return 'bad id';
  if (expectId !== undefined && id !== expectId) return `id ${id} does not match file name ${expectId}`;
  if (!isNat(birth)) return 'bad birth';
  if (typeof sender !== 'string') return 'bad sender';
  if (!Array.isArray(recipients)) return 'bad recipients';
  const rs: RecipientState[] = [];
  for (const r of recipients) {
    const d = decodeRecipient(r);
    if (typeof d === 'string') return `bad ${d}`;
    rs.push(d);
  }
  if (typeof held !== 'boolean') return 'bad held';
  if (!isNat(size)) return 'bad size';
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return 'bad sha256';
  if (!isObj(meta) || !Object.values(meta).every((v) => typeof v === 'string')) return 'bad meta';
  if (typeof queueName !== 'string' || queueName === '') return 'bad queueName';
  return { id, birth, sender, recipients: rs, held, size, sha256, meta: meta as Record<string, string>, queueName };
}

export function decodeEnvelope(text: string, expectId?: QueueId): Envelope | string {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return 'not valid JSON';
  }
  return decodeEnvelopeObject(o, expectId);
}

/** The envelope without the checksum, as the QueueStore contract shows it. */
export function toQueued(e: Envelope): QueuedMessage {
  const { sha256: _sha, ...rest } = e;
  return rest;
}

/** qmail-queue's own Received line (docs/QMAIL.md D.7.4, F.6); '' for network injections (smtpd writes its own). */
export function receivedLine(injector: Injector, pid: number, ms: number): string {
  let who: string;
  switch (injector.kind) {
    case 'network':
      return '';
    case 'uid':
      who = `invoked by uid ${injector.uid}`;
      break;
    case 'alias':
      who = 'invoked by alias';
      break;
    case 'bounce':
      who = 'invoked for bounce';
      break;
  }
  return `Received: (qmail ${pid} ${who}); ${rfc5322Date(new Date(ms))}\n`;
}
