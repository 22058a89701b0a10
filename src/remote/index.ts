// remote: qmail-remote's job: smtproutes, MX, SMTP (STARTTLS, pipelining, several recipients), qmail's reports.
export type { QueueRemotePolicy, RemoteJob } from './types.js';
export { deliverRemote } from './deliver.js';
export { RemoteEngine } from './engine.js';
export { lookupRoute, routeCandidates, ipLiteral } from './routes.js';
export { resolveTargets, shuffleEqual, nullMxReport, type RemoteResolver } from './mx.js';
export { makeResolver, parseDnsServers } from './dns.js';
export { Tcpto, tcptoPath, backoffSeconds } from './tcpto.js';
export { classifierFor, classifyReply, parseReplyRules, ReplyRulesError } from './classify.js';
// The SMTP client pieces, for src/held's pushes of held Maildirs (one connection, several transactions).
export { openSocket, SmtpClient } from './client.js';
export { openSession, transaction, type Classifier, type TlsPolicy } from './session.js';
