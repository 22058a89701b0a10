// Test helper (not a test): injects crash messages 0..COUNT-1 into ROOT's queue, printing "ok <n> <id>" per acknowledgement.
import { openQueue } from '../../src/queue/index.js';
import { crashMessage, crashRecipient } from './start.js';

const [root, countText, concText] = process.argv.slice(2);
if (root === undefined || countText === undefined) {
  process.stderr.write('usage: crash-inject ROOT COUNT [CONCURRENCY]\n');
  process.exit(100);
}
const count = Number(countText);
const q = await openQueue(root, { create: false });
let next = 0;
async function worker(): Promise<void> {
  while (next < count) {
    const n = next++;
    const id = await q.inject({
      sender: 'crash@test',
      recipients: [crashRecipient(n)],
      data: crashMessage(n),
      injector: { kind: 'uid', uid: process.getuid?.() ?? 0 },
    });
    process.stdout.write(`ok ${n} ${id}\n`);
  }
}
await Promise.all(Array.from({ length: Number(concText ?? '8') }, worker));
q.close();
