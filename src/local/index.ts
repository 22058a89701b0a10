// local: qmail-local for quail — choosing the .qmail file, parsing it, and delivering as the user's uid.
export type { LocalJob, ForwardRequest, LocalResult } from './types.js';
export { findDotQmail, safeExt, newSender } from './dotqmail.js';
export type { DotQmailChoice, NewSender } from './dotqmail.js';
export { parseInstructions } from './instructions.js';
export type { Instruction } from './instructions.js';
export { runQmailLocal, USAGE } from './run.js';
export type { LocalRun, RunOptions } from './run.js';
export type { LocalArgs, HeaderLines } from './env.js';
export { headerLines, programEnv, qmailCtime, quoteSender, defaultPath } from './env.js';
export { deliverLocal, resultOf, wrongUidText } from './deliver.js';
export type { DeliverOptions } from './deliver.js';
export { LocalDeliverer } from './pool.js';
export type { LocalDelivererOptions } from './pool.js';
export type { OutputChunk } from './program.js';
export type { InProcessPrograms, ProgramCall, ProgramHook, ProgramHookResult } from './hook.js';
export { serveDeliveryWorker } from './serve.js';
export { runVdeliverLine, runMailboxDotQmail, VdeliverHook, type OpenLookup, type OpenedLookup } from './vdeliverhook.js';
