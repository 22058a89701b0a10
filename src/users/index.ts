// users: users/assign parser, newu compiler, lookup (users/cdb, then passwd, then alias), newmrh.
export type { Assignment, PasswdEntry, PasswdSource } from './types.js';
export { parseAssign, assignRecords, AssignFormatError } from './assign.js';
export { lookupAssignment, getpw } from './lookup.js';
export { tablePasswd, systemPasswd, parsePasswd } from './passwd.js';
export { newu, newmrh } from './newu.js';
