// directory: vpopmail's storage and administration for quail — domains, mailboxes, aliases in SQLite or PostgreSQL, kept in
// step with qmail's files. Delivery is src/vdeliver's, through the read-only lookups of Directory (MailboxLookup).
export type {
  Alias,
  DeliveryAccount,
  Directory,
  Domain,
  DomainLimits,
  LoginTime,
  Mailbox,
  MailboxFlag,
  MailboxPatch,
  MailboxMove,
  MoveFile,
  Office,
  UnknownPolicy,
  Vacation,
} from './types.js';
export {
  DirectoryError,
  domainName,
  aliasDomainName,
  localPart,
  formatPolicy,
  isForwardTarget,
  checkTarget,
  parsePolicy,
  parseFlag,
} from './names.js';
export { officeName, officeHost, officePort, officeTls } from './offices.js';
export { KeptDirectory, openDirectory, locateDirectory, shareWithDeliveryGroup, SQLITE_FILE } from './open.js';
export { LATEST as SCHEMA_VERSION } from './migrations.js';
export { hashPassword, verifyPassword, hashScheme, type PasswordVerifier } from './password.js';
export { authenticate, throttleLogin } from './auth.js';
export { mayUseSender } from './senders.js';
export { checkDrift, repairDrift, type DriftSource } from './sync.js';
export {
  addAliasDomain,
  changeDomain,
  createDomain,
  createMailbox,
  deliveryAccount,
  foreignAccountProblem,
  holdDomain,
  unholdDomain,
  parseAddress,
  removeAliasDomain,
  removeDomain,
  removeMailbox,
  type Ctx,
} from './admin.js';
export { importVpopmail, parseVpasswdLine, vpopPolicy, type ImportReport } from './import.js';
export { importQmail } from './importqmail.js';
export { backupDirectory, restoreDirectory } from './backup.js';
export { listName, memberAddress } from './lists.js';
export {
  LIST_ROLES,
  type ListMember,
  type ListOptions,
  type ListRole,
  type ListTable,
  type MailingList,
} from './listtypes.js';
export type { HeldRecord } from './held.js';
