// bounce: qmail-send's bounce messages: QSBMF byte for byte, or RFC 3464 reports carrying qmail's text.
export { composeBounce, type BounceRequest, type BouncePlan } from './compose.js';
export {
  bounceConfigFrom,
  bounceEnvelope,
  stripVerpRequest,
  type BounceConfig,
  type BounceEnvelope,
  type BounceFormat,
} from './envelope.js';
export { qsbmfHead, type QsbmfHead } from './qsbmf.js';
export { dsnHead, dsnTail, diagnosticCode, failureStatus, DSN_FULL_COPY_LIMIT, type DsnHead } from './dsn.js';
export { failureParagraph, greeting, humanText, textBytes, type BounceFailure } from './text.js';
