// The delivery worker's loop: forked with one (uid, gid), runs qmail-local for each job the parent sends.
import { ignoreUserSignals, TurnBatch, unbatch } from '../core/index.js';
import { UniqueNamer } from '../maildir/index.js';
import { resultOf } from './deliver.js';
import type { ProgramHook } from './hook.js';
import { ipcProgramWatch } from './groups.js';
import { killPrograms, watchPrograms } from './program.js';
import { runQmailLocal } from './run.js';
import type { WorkerRequest, WorkerReply } from './protocol.js';

/**
 * Serves LocalDeliverer's jobs in this (worker) process until the IPC channel closes. `programHook` runs some program
 * lines in-process (InProcessPrograms: the worker's entry module makes it); without one every line is spawned.
 */
export function serveDeliveryWorker(programHook?: ProgramHook): void {
  ignoreUserSignals(); // no debugger on SIGUSR1: a .qmail program of this uid could send it (core/signals.ts)
  const namer = new UniqueNamer();
  process.umask(0o077);
  // each program's group is reported to LocalDeliverer before its command runs: killed, we leave none behind
  watchPrograms(ipcProgramWatch());

  // the replies of one event-loop turn go back as one message (src/core/turn-batch.ts)
  const replies = new TurnBatch<WorkerReply>((m) => {
    if (process.connected) process.send?.(m);
  });
  const serve = (msg: WorkerRequest): void => {
    void (async (): Promise<void> => {
      let reply: WorkerReply;
      try {
        const run = await runQmailLocal(msg.args, {
          doit: true,
          messagePath: msg.messagePath,
          path: msg.path,
          namer,
          injector: msg.injector,
          ...(programHook ? { programHook } : {}),
        });
        reply = { id: msg.id, result: resultOf(run) };
      } catch (err) {
        reply = {
          id: msg.id,
          result: { result: 'deferral', report: `Unexpected error in delivery worker: ${String(err)}. (#4.3.0)\n` },
        };
      }
      replies.send(reply);
    })();
  };
  process.on('message', (m: unknown) => unbatch(m, (r) => serve(r as WorkerRequest)));
  // The parent gone: nothing new, and no program left working beside the delivery the next scheduler repeats.
  process.on('disconnect', () => {
    killPrograms();
    process.exit(0);
  });
}
