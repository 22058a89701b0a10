// throttle: the failed-login slowdown shared by every password login (pop3d, smtpd AUTH), and the connection limits of every listener; README.md.
export { LoginThrottle, SharedLoginThrottle, type ThrottleOptions } from './throttle.js';
export { ConnectionLimits, type Admission } from './connections.js';
