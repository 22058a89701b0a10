// vdeliver: vdelivermail for quail — delivery to a directory-managed mailbox over a read-only directory interface.
export {
  vdeliver,
  lookupAddressByParts,
  type VdeliverResult,
  type VdeliverForward,
  type DotQmailRequest,
  type ProgramRequest,
} from './vdeliver.js';
export type { ReplyRunner } from './vacation.js';
export type { AddressLookup, LookupAlias, LookupDomain, LookupMailbox, MailboxLookup, Vacation } from './types.js';
export {
  formatPolicy,
  formatVdeliverLine,
  mailboxLocal,
  parsePolicyWord,
  parseVdeliverLine,
  shellWord,
  shellWords,
  targetKind,
  unusableLocal,
  type UnknownPolicy,
} from './line.js';
export { DOMAIN_SIZE_FILE } from './quota.js';
