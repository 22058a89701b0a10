// Export and import of whole queues (or selected messages) as one checksummed file (docs/QUEUE.md).
import { createHash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QuailError } from '../core/index.js';
import type { QueueId, RecipientState } from './types.js';
import { newQueueId } from './layout.js';
import { errCode, exists, fsyncDir, queueError, unlinkQuiet } from './durable.js';
import { type Envelope, decodeEnvelopeObject, envelopeObject } from './envelope.js';
import { type FileQueue, writeAll } from './store.js';

const EXPORT_MAGIC = 'quail-queue-export 1';
const CHUNK = 64 * 1024;
const MAX_LINE = 16 * 1024 * 1024;

export interface ExportResult {
  readonly ids: QueueId[];
}

/** Writes the messages (all, or `ids`) to `file` (must not exist), fsynced; with `remove`, then removes them. */
export async function exportQueue(
  q: FileQueue,
  file: string,
  ids?: readonly QueueId[],
  remove = false,
  /** After each message written: how many of how many (a progress bar). */
  progress?: (done: number, total: number) => void,
): Promise<ExportResult> {
  const wanted = ids ?? (await q.ids());
  let fh: FileHandle;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (err) {
    if (errCode(err) === 'EEXIST') throw new QuailError(`${file} exists: choose a new file name`, false);
    throw queueError(`cannot create ${file}`, err);
  }
  const done: QueueId[] = [];
  try {
    await writeAll(fh, Buffer.from(`${EXPORT_MAGIC}\n`));
    for (const id of wanted) {
      const e = await q.envelope(id);
      if (!e) {
        if (ids) throw new QuailError(`message ${id} is not in the queue`, false);
        continue; // removed while we worked
      }
      await writeAll(
        fh,
        Buffer.from(
          `${JSON.stringify({ type: 'message', envelope: envelopeObject(e), bytes: e.size, sha256: e.sha256 })}\n`,
        ),
      );
      await copyMessage(q.messagePath(id), fh, e);
      await writeAll(fh, Buffer.from('\n'));
      done.push(id);
      progress?.(done.length, wanted.length);
    }
    await writeAll(fh, Buffer.from(`${JSON.stringify({ type: 'end', messages: done.length })}\n`));
    await fh.sync();
    await fh.close();
    await fsyncDir(dirname(file));
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlinkQuiet(file);
    throw queueError(`cannot export to ${file}`, err);
  }
  if (remove) for (const id of done) await q.remove(id);
  return { ids: done };
}

async function copyMessage(path: string, out: FileHandle, e: Envelope): Promise<void> {
  const fh = await open(path, 'r');
  const hash = createHash('sha256');
  let total = 0;
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      const part = buf.subarray(0, bytesRead);
      hash.update(part);
      total += bytesRead;
      await writeAll(out, part);
    }
  } finally {
    await fh.close();
  }
  if (total !== e.size || hash.digest('hex') !== e.sha256) {
    throw new QuailError(
      `message ${e.id} does not match its envelope (size or sha256): run quail queue recover --verify`,
      false,
    );
  }
}

/** Buffered sequential reader of the export file: lines and exact byte counts. */
class Reader {
  private buf = Buffer.alloc(0);
  private eof = false;
  constructor(private readonly fh: FileHandle) {}

  private async fill(): Promise<boolean> {
    if (this.eof) return false;
    const b = Buffer.alloc(CHUNK);
    const { bytesRead } = await this.fh.read(b, 0, CHUNK, null);
    if (bytesRead === 0) {
      this.eof = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, b.subarray(0, bytesRead)]) : b.subarray(0, bytesRead);
    return true;
  }

  async line(): Promise<string | undefined> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0) {
        const s = this.buf.subarray(0, nl).toString('utf8');
        this.buf = this.buf.subarray(nl + 1);
        return s;
      }
      if (this.buf.length > MAX_LINE) throw damaged('a record line is too long');
      if (!(await this.fill())) return undefined;
    }
  }

  async bytes(n: number, sink: (b: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw damaged('truncated message data');
      const part = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(part.length);
      left -= part.length;
      await sink(part);
    }
  }
}

const damaged = (why: string): QuailError => new QuailError(`damaged export file: ${why}`, false);

export interface ImportResult {
  readonly ids: QueueId[];
  /** Ids already present in this queue, and the new ids their messages got. */
  readonly renamed: Array<readonly [QueueId, QueueId]>;
}

/** Reads an export file and commits each message (inject protocol), keeping birth and recipient states. */
export async function importQueue(
  q: FileQueue,
  file: string,
  /** After each message committed: the bytes of messages read so far and the file's size (a progress bar). */
  progress?: (done: number, total: number) => void,
): Promise<ImportResult> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw queueError(`cannot open ${file}`, err);
  }
  const res: ImportResult = { ids: [], renamed: [] };
  let read = 0;
  try {
    const total = progress ? (await fh.stat()).size : 0;
    const r = new Reader(fh);
    if ((await r.line()) !== EXPORT_MAGIC)
      throw damaged(`not a quail queue export (first line is not "${EXPORT_MAGIC}")`);
    for (;;) {
      const line = await r.line();
      if (line === undefined)
        throw damaged(`truncated after ${res.ids.length} messages (no end record); those were imported`);
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        throw damaged(`record ${res.ids.length + 1} is not JSON`);
      }
      if (typeof rec !== 'object' || rec === null) throw damaged('record is not an object');
      const o = rec as Record<string, unknown>;
      if (o['type'] === 'end') {
        if (o['messages'] !== res.ids.length)
          throw damaged(`end record says ${String(o['messages'])} messages, found ${res.ids.length}`);
        break;
      }
      if (o['type'] !== 'message') throw damaged(`unknown record type ${JSON.stringify(o['type'])}`);
      const e = decodeEnvelopeObject(o['envelope']);
      if (typeof e === 'string') throw damaged(`envelope: ${e}`);
      if (o['bytes'] !== e.size || o['sha256'] !== e.sha256)
        throw damaged(`message ${e.id}: record and envelope disagree`);
      await importOne(q, r, e, res);
      if ((await r.line()) !== '') throw damaged(`message ${e.id}: no newline after the data`);
      read += line.length + e.size;
      progress?.(Math.min(read, total), total);
    }
  } finally {
    await fh.close();
  }
  if (res.ids.length) q.waker.notifyNew();
  return res;
}

async function taken(q: FileQueue, id: QueueId): Promise<boolean> {
  const L = q.layout;
  return (await exists(L.env(id))) || (await exists(L.mess(id))) || (await exists(L.trash(id)));
}

/**
 * A recipient still to be delivered loses the routing the exporting machine gave it: this machine's control files
 * route it again (the source's virtualdomains prefixes, smtproutes or offices need not hold here, and a file from
 * elsewhere must not choose this host's local addresses). Done and failed recipients keep theirs, as a record.
 */
function unrouted(r: RecipientState): RecipientState {
  if (r.status === 'done' || r.status === 'failed') return r;
  const { channel: _c, address: _a, ...rest } = r;
  return rest;
}

async function importOne(q: FileQueue, r: Reader, e: Envelope, res: ImportResult): Promise<void> {
  let id = e.id;
  while (await taken(q, id)) id = newQueueId(e.birth * 1000);
  const tmpMess = q.layout.tmp(id, 'mess');
  q.inFlight.add(id);
  try {
    const out = await open(tmpMess, 'wx', 0o600).catch((err: unknown) => {
      throw queueError('cannot write to the queue', err);
    });
    const hash = createHash('sha256');
    try {
      if (q.owner) await out.chown(q.owner.uid, q.owner.gid);
      await r.bytes(e.size, async (b) => {
        hash.update(b);
        await writeAll(out, b);
      });
      await out.datasync();
    } catch (err) {
      await out.close().catch(() => undefined);
      await unlinkQuiet(tmpMess);
      throw err instanceof QuailError ? err : queueError('cannot write to the queue', err);
    }
    await out.close();
    if (hash.digest('hex') !== e.sha256) {
      await unlinkQuiet(tmpMess);
      throw damaged(`message ${e.id}: sha256 mismatch`);
    }
    await q.commit({ tmpMess, env: { ...e, id, recipients: e.recipients.map(unrouted) } });
  } finally {
    q.inFlight.delete(id);
  }
  res.ids.push(id);
  if (id !== e.id) res.renamed.push([e.id, id]);
}
