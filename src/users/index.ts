// users: users/assign parser, newu compiler, lookup (users/cdb, then passwd, then alias), newmrh.
export type { Assignment, PasswdEntry, PasswdSource } from './types.js';
export { parseAssign, assignKey, assignRecords, AssignFormatError, type AssignEntry, type ParsedAssign } from './assign.js';
export { lookupAssignment, getpw, cdbAssignment } from './lookup.js';
export { tablePasswd, systemPasswd, parsePasswd } from './passwd.js';
export { newu, newmrh } from './newu.js';
