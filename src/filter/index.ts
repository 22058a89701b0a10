// filter: qmail's QMAILQUEUE hook (qmail-queue-compatible programs) and quail's own queue program (README.md).
export { qmailQueueFilter, DEFAULT_FILTER_TIMEOUT } from './hook.js';
export { runQmailQueue, encodeEnvelope, qmailQueueExit, type FilterMessage } from './qmailqueue.js';
export { queueInject } from './queue-inject.js';
