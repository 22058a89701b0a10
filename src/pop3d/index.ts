// pop3d: qmail-popup and qmail-pop3d's job — a POP3 server over Maildirs (README.md).
export { createPop3Server, type Pop3Server, type Pop3ServerOptions } from './server.js';
export { MaildirStore, uidFor } from './maildir.js';
export { parsePop3Listener, pop3ListenerOptions, type Pop3ListenerSpec } from './listener.js';
export { normaliseLogin, parseCommand, decodePlain, isLoopback } from './parse.js';
export type { Pop3Authenticator, Pop3ClientRules, Pop3EventLog, Pop3EventName } from './types.js';
