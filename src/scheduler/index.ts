// scheduler: qmail-send — routing new messages once, deliveries, retries, lifetime, bounces.
export { Scheduler } from './scheduler.js';
export type { Channel, LookupAssignment, SchedulerDeps, SchedulerEventName, SchedulerLogger, SchedulerTimers } from './types.js';
export { isqrt, nextRetry, isDying, TOO_LONG } from './retry.js';
export { CHANNEL_TABLE, type ChannelSpec } from './channels.js';
export { verpSender, logsafe } from './verp.js';
export { settingsFrom, type SchedulerSettings } from './settings.js';
