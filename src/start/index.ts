// start: the supervisor behind `quail start` and `quail status` (README.md).
export { startQuail, listenerSpecs, runningPid, pidFile, stateFile, errorsFile, type StartOptions, type Running, type RunState } from './supervisor.js';
export { parseListeners, parseHostPort, DEFAULT_LISTENERS, type ListenerError } from './listeners.js';
export { makeEventLog, textLine, levelOf, relayEvent, type EventLog, type Level } from './log.js';
export { EVENTS, isEventName, type EventName, type EventDoc } from './events.js';
export { readStatus, renderStatus, type Status, type QueueCounts } from './status.js';
export { localDeliverer } from './vdeliver-link.js';
