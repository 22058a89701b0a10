// remote: qmail-remote's job: smtproutes, MX, one SMTP transaction per recipient, qmail's report texts.
export type { RemoteJob, RemoteResult } from './types.js';
export { deliverRemote, type RemoteOptions } from './deliver.js';
export { lookupRoute, routeCandidates, ipLiteral, type Route } from './routes.js';
export { resolveTargets, localAddresses, AMBIGUOUS_MX, type RemoteResolver, type Target, type Targets } from './mx.js';
