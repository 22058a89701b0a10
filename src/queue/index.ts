// The queue component's only entrance: the durable store, its contract, export/import, ids.
export type * from './types.js';
export { openQueue, FileQueue, type OpenOptions } from './store.js';
export type { RecoverOptions, RecoverReport } from './recover.js';
export { exportQueue, importQueue, EXPORT_MAGIC, type ExportResult, type ImportResult } from './transfer.js';
export { isQueueId, toQueueId, idTime } from './layout.js';
export { receivedLine, type Envelope } from './envelope.js';
