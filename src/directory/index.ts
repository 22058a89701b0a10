// directory: vpopmail's storage and administration for quail — domains, mailboxes, aliases in SQLite or PostgreSQL, kept in
// step with qmail's files. Delivery is src/vdeliver's, through the read-only lookups of Directory (MailboxLookup).
export type {
  Alias, DeliveryAccount, Directory, Domain, DomainLimits, DomainPatch, Mailbox, MailboxFlag, MailboxPatch, NewDomain,
  NewMailbox, UnknownPolicy,
} from './types.js';
export { MAILBOX_FLAGS } from './types.js';
export { DirectoryError, domainName, localPart, formatPolicy, parsePolicy, parseFlag, splitLogin, checkTarget } from './names.js';
export { openDirectory, locateDirectory, redact, shareWithDeliveryGroup, SQLITE_FILE, type OpenOptions, type DirectoryLocation } from './open.js';
export { MIGRATIONS, LATEST as SCHEMA_VERSION } from './migrations.js';
export { hashPassword, verifyPassword, hashScheme } from './password.js';
export { authenticate, type AuthOptions, type Service } from './auth.js';
export { mayUseSender } from './senders.js';
export { checkDrift, repairDrift, syncDomain, type Drift } from './sync.js';
export {
  addAliasDomain, changeDomain, createDomain, createMailbox, deliveryAccount, parseAddress, removeAliasDomain, removeDomain,
  removeMailbox, type Ctx, type NewUser,
} from './admin.js';
export { importVpopmail, parseVpasswdLine, vpopPolicy, vpopFlags, type ImportReport, type VpopImportOptions, type VpasswdEntry } from './import.js';
export { importQmail } from './importqmail.js';
export { backupDirectory, restoreDirectory, DIRECTORY_SQLITE, DIRECTORY_JSON, DIRECTORY_TABLES, type DirectoryRows } from './backup.js';
