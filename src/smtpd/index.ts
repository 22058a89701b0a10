// smtpd: qmail-smtpd's acceptance rules on quail's own ESMTP engine (README.md).
export { SmtpListener, loadTlsContext, hostIps, type ListenerSpec, type ListenerKind, type SmtpServerDeps } from './server.js';
export { runSession, DEFAULT_LIMITS, type SessionDeps, type SessionLimits, type SessionSummary, type SessionEventLog, type SmtpEventName, type EndReason } from './session.js';
export {
  NO_DIRECTORY, OWN_ADDRESS_ONLY, withDefaultDomain, type Authenticator, type AuthResult, type RcptVerdict, type RecipientCheck, type SenderCheck,
  type SenderVerdict,
} from './auth.js';
export { loadPolicy, type Policy, type SessionEnv } from './policy.js';
export { parseEnvelopeArg, applyLocalIpHost } from './address.js';
export { parseTcpRules, matchTcpRules, type TcpRules, type TcpRule } from './tcprules.js';
export { receivedLine, date822 } from './received.js';
export { DataDecoder, type DataProblem } from './data.js';
