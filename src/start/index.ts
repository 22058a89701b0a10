// start: the supervisor behind `quail start` and `quail status` (README.md).
export { startQuail, runningPid, errorsFile, type Running } from './supervisor.js';
export { makeEventLog } from './log.js';
export { readStatus, renderStatus } from './status.js';
export { localDeliverer } from './vdeliver-link.js';
export { reachable, unreachableText } from './reach.js';
export { listenerQueue } from './listeners.js';
