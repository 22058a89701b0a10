// maildir: writing messages into Maildirs (unique names, tmp → new) and creating Maildirs.
export { UniqueNamer, safeHost } from './unique.js';
export { deliverToMaildir } from './deliver.js';
export type { MaildirResult } from './deliver.js';
export { maildirMake } from './make.js';
