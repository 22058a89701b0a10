// maildir: writing messages into Maildirs (unique names, tmp → new), creating Maildirs, and Maildir++ quota (maildirsize).
export { UniqueNamer, safeHost } from './unique.js';
export { deliverToMaildir } from './deliver.js';
export { maildirMake } from './make.js';
export {
  nearQuota,
  overQuota,
  quotaLine,
  readUsage,
  recordDelivery,
  recordRemoval,
  scanUsage,
  sumSizeLines,
  writeAtomic,
  type Usage,
} from './quota.js';
