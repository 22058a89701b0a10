// throttle: the failed-login slowdown shared by every password login (pop3d, smtpd AUTH, ODMR AUTH, the web admin), one table across processes (remote.ts), and the connection limits of every listener; README.md.
export { countedAs, LoginThrottle, MAX_AUTH_FAILURES, type LoginAttempts, type ThrottleOptions } from './throttle.js';
export { RemoteThrottle, serveThrottle, type ThrottleReply, type ThrottleRequest } from './remote.js';
export { ConnectionLimits, type Admission } from './connections.js';
