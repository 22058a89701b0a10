// The queue component's only entrance: the durable store, its contract, export/import, ids.
export type * from './types.js';
export { openQueue, FileQueue } from './store.js';
export { exportQueue, importQueue } from './transfer.js';
export { isQueueId, toQueueId, idTime } from './layout.js';
export { receivedLine } from './envelope.js';
