// smtpd: qmail-smtpd's acceptance rules on quail's own ESMTP engine (README.md).
export {
  SmtpListener,
  loadTlsContext,
  hostIps,
  listenerLimits,
  tooManyReply,
  type ListenerSpec,
  type ListenerKind,
} from './server.js';
export { runSession, DEFAULT_LIMITS, type SessionSummary, type SmtpEventName } from './session.js';
export {
  NO_DIRECTORY,
  OWN_ADDRESS_ONLY,
  type Authenticator,
  type AuthResult,
  type RcptVerdict,
  type RecipientCheck,
  type SenderCheck,
  type SenderVerdict,
} from './auth.js';
export type { CheckFacts, CheckVerdict, MessageChecker } from './check.js';
export { loadPolicy, type SessionEnv } from './policy.js';
export type { AutoTurnHook, EtrnService, EtrnNode, EtrnAnswer } from './etrn.js';
export type { RblResolver } from './rbl.js';
