// remote: qmail-remote's job: smtproutes, MX, SMTP (STARTTLS, pipelining, several recipients), qmail's reports.
export type { RemoteJob } from './types.js';
export { deliverRemote, deliverBatch, tlsPolicy, type RemoteOptions, type DeliverExtras } from './deliver.js';
export { RemoteEngine, type RemoteEngineOptions } from './engine.js';
export { lookupRoute, routeCandidates, ipLiteral, type Route } from './routes.js';
export {
  resolveTargets, localAddresses, shuffleEqual, nullMxReport, AMBIGUOUS_MX,
  type RemoteResolver, type Target, type Targets, type ResolveOptions,
} from './mx.js';
export { makeResolver, parseDnsServers } from './dns.js';
export { Tcpto, tcptoPath, backoffSeconds, type TcptoEntry } from './tcpto.js';
export { classifierFor, classifyReply, makeClassifier, parseReplyRules, ReplyRulesError, type Classification } from './classify.js';
export { REPLY_RULES, type ReplyRule } from './replyrules.js';
export type { TlsPolicy, Envelope, Classifier } from './session.js';
