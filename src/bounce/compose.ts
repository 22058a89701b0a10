// Puts a whole bounce together: envelope (F.5), text (QSBMF or DSN), and the original streamed after it.
import { Readable } from 'node:stream';
import { bounceEnvelope, type BounceConfig } from './envelope.js';
import { DSN_FULL_COPY_LIMIT, dsnHead, dsnTail } from './dsn.js';
import { qsbmfHead } from './qsbmf.js';
import { headerOfFile, wholeFile } from './stream.js';
import { textBytes, type BounceFailure } from './text.js';

export interface BounceRequest {
  readonly config: BounceConfig;
  /** The original message's envelope sender, as queued. */
  readonly sender: string;
  /** Failed recipients, virtual prefixes already removed. At least one. */
  readonly failures: readonly BounceFailure[];
  /** Path of the original message file (read, never modified). */
  readonly messagePath: string;
  /** Its size in bytes (decides whether a DSN copies all of it). */
  readonly messageSize: number;
  /** Unix seconds: now (Date:) and the original's birth (Arrival-Date:). */
  readonly now: number;
  readonly birth: number;
  /** Something unique to this bounce (the queue id) for the MIME boundary. */
  readonly uniqueId: string;
}

export type BouncePlan =
  | { readonly kind: 'triple' }
  | {
      readonly kind: 'bounce' | 'double';
      /** Envelope of the bounce: `""` → sender, or `#@[]` → doublebounceto. */
      readonly sender: '' | '#@[]';
      readonly recipient: string;
      /** The bounce message, streamed (the original is never held in memory whole). */
      readonly data: Readable;
    };

async function* concat(
  head: string,
  body: AsyncGenerator<Buffer>,
  tail?: (lastByte: number) => string,
): AsyncGenerator<Buffer> {
  yield textBytes(head);
  let last = 0x0a;
  for await (const chunk of body) {
    if (chunk.length > 0) last = chunk[chunk.length - 1] ?? last;
    yield chunk;
  }
  if (tail) yield textBytes(tail(last));
}

/** Decides and builds the bounce of one message (F.4–F.6); `triple` means: discard it. */
export function composeBounce(req: BounceRequest): BouncePlan {
  const env = bounceEnvelope(req.sender, req.config);
  if (env.kind === 'triple') return { kind: 'triple' };
  const head = {
    config: req.config,
    recipient: env.recipient,
    returnPath: env.returnPath,
    double: env.kind === 'double',
    failures: req.failures,
    now: req.now,
  };
  let gen: AsyncGenerator<Buffer>;
  if (req.config.format === 'qsbmf') {
    gen = concat(qsbmfHead(head), wholeFile(req.messagePath));
  } else {
    const boundary = `=_quail_dsn_${req.uniqueId.replace(/[^0-9A-Za-z]/g, '')}_${req.now}`;
    const fullCopy = req.messageSize <= DSN_FULL_COPY_LIMIT;
    gen = concat(
      dsnHead({ ...head, birth: req.birth, boundary, fullCopy }),
      fullCopy ? wholeFile(req.messagePath) : headerOfFile(req.messagePath),
      (last) => dsnTail(boundary, last !== 0x0a),
    );
  }
  return {
    kind: env.kind,
    sender: env.sender,
    recipient: env.recipient,
    data: Readable.from(gen, { objectMode: false }),
  };
}
