// The delivery worker process: forked with one (uid, gid), runs qmail-local for each job the parent sends.
import { UniqueNamer } from '../maildir/index.js';
import { resultOf } from './deliver.js';
import { runQmailLocal } from './run.js';
import type { WorkerRequest, WorkerReply } from './protocol.js';
import { VdeliverHook } from './vdeliverhook.js';

const namer = new UniqueNamer();
const vdeliverHook = new VdeliverHook();
process.umask(0o077);

process.on('message', (msg: WorkerRequest) => {
  void (async (): Promise<void> => {
    let reply: WorkerReply;
    try {
      const run = await runQmailLocal(msg.args, {
        doit: true,
        messagePath: msg.messagePath,
        path: msg.path,
        namer,
        injector: msg.injector,
        programHook: vdeliverHook.run,
      });
      reply = { id: msg.id, result: resultOf(run) };
    } catch (err) {
      reply = { id: msg.id, result: { result: 'deferral', report: `Unexpected error in delivery worker: ${String(err)}. (#4.3.0)\n` } };
    }
    process.send?.(reply);
  })();
});
process.on('disconnect', () => process.exit(0));
