// Queue directory layout (docs/QUEUE.md): paths, portable ids, tmp file names.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { QuailError } from '../core/index.js';
import type { QueueId } from './types.js';

export const SUBDIRS = ['tmp', 'mess', 'env', 'trash', 'corrupt', 'wake', 'spare', 'journal'] as const;
export type Subdir = (typeof SUBDIRS)[number];

/** Leftovers in tmp/ older than this belong to nobody, whatever their pid says (qmail-clean's 36 hours). */
export const TMP_MAX_AGE_MS = 36 * 3600 * 1000;

const ID_RE = /^[0-9a-z]{9}-[0-9a-v]{12}$/;
const B32 = '0123456789abcdefghijklmnopqrstuv';

export function isQueueId(s: string): s is QueueId {
  return ID_RE.test(s);
}

/** Checks an id given by a user or a file; throws a permanent error for anything else. */
export function toQueueId(s: string): QueueId {
  if (!isQueueId(s))
    throw new QuailError(`not a queue id: ${JSON.stringify(s)} (expected like 0lb3k9a2x-3f9q0c1m2n4p)`, false);
  return s;
}

/** Random bytes for ids, drawn from the CSPRNG 100 ids at a time (one call per id showed in the SMTP profile). */
let pool = Buffer.alloc(0);
let poolAt = 0;

/** A new id: birth time in ms (base 36, 9 digits) and 60 random bits (base 32). */
export function newQueueId(ms: number): QueueId {
  const t = Math.max(0, Math.floor(ms)).toString(36).padStart(9, '0').slice(-9);
  if (poolAt + 12 > pool.length) {
    pool = randomBytes(1200);
    poolAt = 0;
  }
  let rand = '';
  for (let i = poolAt; i < poolAt + 12; i++) rand += B32[(pool[i] as number) & 31];
  poolAt += 12;
  return `${t}-${rand}` as QueueId;
}

/** Birth ms encoded in an id (for ordering only; the envelope's birth is the truth). */
export function idTime(id: QueueId): number {
  return parseInt(id.slice(0, 9), 36);
}

export type TmpKind = 'mess' | 'env' | 'upd';
export interface TmpName {
  readonly id: QueueId;
  readonly pid: number;
  readonly kind: TmpKind;
}

const TMP_RE = /^([0-9a-z]{9}-[0-9a-v]{12})\.(\d{1,10})\.(?:(mess|env)|\d{1,12}\.(upd))$/;

export function parseTmpName(name: string): TmpName | undefined {
  const m = TMP_RE.exec(name);
  if (!m) return undefined;
  const kind = (m[3] ?? m[4]) as TmpKind;
  return { id: m[1] as QueueId, pid: Number(m[2]), kind };
}

/** Paths of one queue directory. */
export class Layout {
  constructor(readonly dir: string) {}
  sub(d: Subdir): string {
    return join(this.dir, d);
  }
  mess(id: QueueId): string {
    return join(this.dir, 'mess', id);
  }
  env(id: QueueId): string {
    return join(this.dir, 'env', id);
  }
  trash(id: QueueId): string {
    return join(this.dir, 'trash', id);
  }
  tmp(id: QueueId, kind: 'mess' | 'env', pid = process.pid): string {
    return join(this.dir, 'tmp', `${id}.${pid}.${kind}`);
  }
  upd(id: QueueId, n: number, pid = process.pid): string {
    return join(this.dir, 'tmp', `${id}.${pid}.${n}.upd`);
  }
}
