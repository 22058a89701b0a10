// throttle: the failed-login slowdown shared by every password login (pop3d, smtpd AUTH); README.md.
export { LoginThrottle, type ThrottleOptions } from './throttle.js';
