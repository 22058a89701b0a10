// Test helper (not a test): injects continuously into <root>/queue, printing "ok <id> <sha256 of data>" per ack.
// With `journal` it commits through the queue journal (journal.ts).
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { openQueue } from './index.js';

const root = process.argv[2];
if (!root) {
  process.stderr.write('usage: crash-child ROOT [journal]\n');
  process.exit(100);
}
// `journal`: the group commit, with segments rotated and retired often, so kills land in those steps too
const q = await openQueue(root, process.argv[3] === 'journal' ? { journal: { rotateMs: 80, retireMs: 80 } } : {});

async function one(n: number): Promise<void> {
  // sizes from a few bytes to ~300 KB, sent in chunks, so kills land in every step
  const size = n % 7 === 0 ? 200_000 + (n % 5) * 20_000 : 10 + ((n * 7919) % 5000);
  const data = randomBytes(size);
  const chunks: Buffer[] = [];
  for (let i = 0; i < size; i += 16384) chunks.push(data.subarray(i, i + 16384));
  const id = await q.inject({
    sender: `s${n}@x`,
    recipients: [`r${n}@y`],
    data: Readable.from(chunks),
    injector: { kind: 'uid', uid: 0 },
  });
  process.stdout.write(`ok ${id} ${createHash('sha256').update(data).digest('hex')}\n`);
}

let n = 0;
async function worker(): Promise<void> {
  for (;;) await one(n++);
}
await Promise.all([worker(), worker(), worker(), worker()]);
