// access: who may do what (system administrator, domain administrator, user) — one decision for the CLI and the web
// admin, the typed changes it guards, and the web admin's requests to the process that makes them. README.md.
export { AccessDenied, principalOf, refusal, type Principal } from './policy.js';
export { perform, type Change } from './changes.js';
export type { MailboxRow, View, ViewData } from './views.js';
export { serveWeb, type WebAnswer, type WebRequest, type Who } from './protocol.js';
export type { ListOptions, ListViewData } from './lists.js';
