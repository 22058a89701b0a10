// local: qmail-local for quail — choosing the .qmail file, parsing it, and delivering as the user's uid.
export type { LocalJob, ForwardRequest, LocalResult } from './types.js';
export { findDotQmail, safeExt, newSender } from './dotqmail.js';
export type { DotQmailChoice, NewSender } from './dotqmail.js';
export { parseInstructions } from './instructions.js';
export type { Instruction } from './instructions.js';
