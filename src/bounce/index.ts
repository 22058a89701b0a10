// bounce: qmail-send's bounce messages: QSBMF byte for byte, or RFC 3464 reports carrying qmail's text.
export { composeBounce } from './compose.js';
export { bounceConfigFrom, bounceEnvelope, type BounceConfig } from './envelope.js';
export { failureStatus } from './dsn.js';
export { failureParagraph, textBytes, type BounceFailure } from './text.js';
