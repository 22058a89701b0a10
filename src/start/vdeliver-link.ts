// The delivery side of the user directory: `| quail vdeliver` lines run in-process by src/local over src/directory.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDirectory } from '../directory/index.js';
import { openQueue } from '../queue/index.js';
import type { ReplyRunner } from '../vdeliver/index.js';
import {
  LocalDeliverer,
  VdeliverHook,
  type InProcessPrograms,
  type LocalDelivererOptions,
  type OpenLookup,
} from '../local/index.js';

/** A root's directory as vdeliver reads it: read-only, never migrated (delivery workers have no write access to it). */
export const openLookup: OpenLookup = (root) => openDirectory({ root, readonly: true });

/**
 * Vacation replies (RFC 3834) of a root's mailboxes, queued by the delivery worker itself with the null sender, as
 * qmail's autoresponders queue theirs through qmail-inject: the worker runs as the domain's account, which for
 * `quail domain add`'s default (control/quailuser) owns the queue. Another account cannot write the queue: the reply
 * is then not sent and the delivery report says why (the delivery itself stands).
 */
export const queueReply =
  (root: string): ReplyRunner =>
  async (r) => {
    const q = await openQueue(root, { create: false });
    try {
      await q.inject({
        sender: '',
        recipients: [r.recipient],
        data: Buffer.from(r.message, 'utf8'),
        injector: { kind: 'uid', uid: process.getuid?.() ?? 0 },
        meta: { origin: 'inject' },
      });
    } finally {
      q.close();
    }
  };

/** The delivery workers' entry (delivery-worker.ts): local's worker loop with this hook. */
const WORKER_PATH = join(dirname(fileURLToPath(import.meta.url)), 'delivery-worker.js');

/** vdeliver in-process for one LocalDeliverer: a hook for its own process (one directory per root, kept open). */
function vdeliverInProcess(): InProcessPrograms {
  const hook = new VdeliverHook(openLookup, queueReply);
  return { hook: hook.run, workerPath: WORKER_PATH, close: () => hook.close() };
}

/** The LocalDeliverer quail runs: directory-managed domains' `| quail vdeliver` lines in-process (src/local README). */
export function localDeliverer(opts: Omit<LocalDelivererOptions, 'inProcess'> = {}): LocalDeliverer {
  return new LocalDeliverer({ ...opts, inProcess: vdeliverInProcess() });
}
