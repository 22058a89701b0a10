// vdeliver: vdelivermail for quail — delivery to a directory-managed mailbox over a read-only directory interface.
export {
  vdeliver, type VdeliverOptions, type VdeliverResult, type VdeliverForward, type DotQmailRequest, type DotQmailRunner, type ProgramRequest,
  type ProgramRunner,
} from './vdeliver.js';
export type { LookupAlias, LookupDomain, LookupMailbox, MailboxLookup } from './types.js';
export {
  formatPolicy, mailboxLocal, parsePolicyWord, parseVdeliverLine, targetKind, unusableLocal, type TargetKind, type UnknownPolicy,
} from './line.js';
export {
  domainUsage, domainWarningMessage, recordDomainDelivery, warningMessage, DOMAIN_SIZE_FILE, DOMAIN_SIZE_MAX_AGE_S, DOMAIN_WARN_FILE,
} from './quota.js';
