// local: qmail-local for quail — choosing the .qmail file, parsing it, and delivering as the user's uid.
export type { LocalJob, LocalResult } from './types.js';
export { findDotQmail, newSender } from './dotqmail.js';
export { parseInstructions } from './instructions.js';
export type { Instruction } from './instructions.js';
export { runQmailLocal, USAGE } from './run.js';
export type { LocalRun } from './run.js';
export type { LocalArgs } from './env.js';
export { headerLines, programEnv, defaultPath } from './env.js';
export { deliverLocal, wrongUidText } from './deliver.js';
export { LocalDeliverer } from './pool.js';
export type { LocalDelivererOptions } from './pool.js';
export type { InProcessPrograms, ProgramCall } from './hook.js';
export { serveDeliveryWorker } from './serve.js';
export { killPrograms, watchPrograms } from './program.js';
export { GroupEndings, ipcProgramWatch, ProgramGroups, type ProgramNote } from './groups.js';
export { runVdeliverLine, VdeliverHook, type OpenLookup } from './vdeliverhook.js';
