// held: mail for customers who are not always online: serialmail's pushes of held Maildirs, locks, connections.
export { parseHead, readEnvelope, type HeldEnvelope } from './envelope.js';
export { lockFile, type HeldLock } from './lock.js';
export {
  pushMaildir,
  heldFiles,
  DEFAULT_LIFETIME,
  type PushOptions,
  type PushResult,
  type MessageReport,
  type MessageFate,
  type Connector,
} from './push.js';
export { tcpConnector, parseHostPort } from './connect.js';
export { findHeld, listHeld, type HeldDomain } from './registry.js';
export { HeldPusher, waiting, oldest, type PusherDeps, type LastPush, type PushOutcome } from './pusher.js';
