// filter: qmail's QMAILQUEUE hook (qmail-queue-compatible programs) and quail's own queue program (README.md).
export { qmailQueueFilter, qmailQueueTarget } from './hook.js';
export { queueInject } from './queue-inject.js';
export { runBuiltinFilter } from './builtin.js';
export { qmailQueueRefusal } from './qmailqueue.js';
