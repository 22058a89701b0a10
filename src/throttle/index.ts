// throttle: the failed-login slowdown shared by every password login (pop3d, smtpd AUTH, ODMR AUTH), and the connection limits of every listener; README.md.
export { countedAs, LoginThrottle, MAX_AUTH_FAILURES, SharedLoginThrottle, type ThrottleOptions } from './throttle.js';
export { ConnectionLimits, type Admission } from './connections.js';
