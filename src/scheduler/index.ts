// scheduler: qmail-send — routing new messages once, deliveries, retries, lifetime, bounces.
export { Scheduler } from './scheduler.js';
export type { OfficeRouter, SchedulerEventName } from './types.js';
