// The delivery side of the user directory: `| quail vdeliver` lines run in-process by src/local over src/directory.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDirectory } from '../directory/index.js';
import {
  LocalDeliverer,
  VdeliverHook,
  type InProcessPrograms,
  type LocalDelivererOptions,
  type OpenLookup,
} from '../local/index.js';

/** A root's directory as vdeliver reads it: read-only, never migrated (delivery workers have no write access to it). */
export const openLookup: OpenLookup = (root) => openDirectory({ root, readonly: true });

/** The delivery workers' entry (delivery-worker.ts): local's worker loop with this hook. */
const WORKER_PATH = join(dirname(fileURLToPath(import.meta.url)), 'delivery-worker.js');

/** vdeliver in-process for one LocalDeliverer: a hook for its own process (one directory per root, kept open). */
function vdeliverInProcess(): InProcessPrograms {
  const hook = new VdeliverHook(openLookup);
  return { hook: hook.run, workerPath: WORKER_PATH, close: () => hook.close() };
}

/** The LocalDeliverer quail runs: directory-managed domains' `| quail vdeliver` lines in-process (src/local README). */
export function localDeliverer(opts: Omit<LocalDelivererOptions, 'inProcess'> = {}): LocalDeliverer {
  return new LocalDeliverer({ ...opts, inProcess: vdeliverInProcess() });
}
