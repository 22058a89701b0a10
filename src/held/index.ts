// held: mail for customers who are not always online: serialmail's pushes of held Maildirs, locks, connections.
export { parseHead } from './envelope.js';
export { pushMaildir, DEFAULT_LIFETIME, type PushOptions, type MessageReport } from './push.js';
export { tcpConnector, parseHostPort } from './connect.js';
export { findHeld, listHeld, type HeldDomain } from './registry.js';
export { HeldPusher, waiting, oldest, readLastPush } from './pusher.js';
export { lockDescription, lockFile, type HeldLock } from './lock.js';
export { pushTurn, socketConnector } from './turn.js';
export { serveOdmr, type OdmrDeps } from './odmr.js';
