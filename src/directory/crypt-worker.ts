// A thread of crypt-pool.ts: recomputes crypt(3) hashes for the process that verifies logins, off its event loop.
import { parentPort } from 'node:worker_threads';
import type { Job, JobResult } from './crypt-pool.js';
import { recomputeCrypt } from './crypt.js';

const port = parentPort;
port?.on('message', (job: Job) => {
  const answer = (out: string | null): void => port.postMessage({ id: job.id, out } satisfies JobResult);
  recomputeCrypt(job.password, job.hash).then(answer, () => answer(null));
});
