// inject: qmail-inject for quail: header rewriting, envelope from arguments or header, commit to the queue.
export {
  injectMessage,
  parseInjectArgv,
  prepareMessage,
  type InjectArgs,
  type InjectResult,
  type InjectTarget,
  type PrepareOptions,
  type PreparedMessage,
  type RecipientSource,
} from './inject.js';
export { injectSettings, makeRewriter, parseInjectFlags, type InjectEnv, type InjectFlags, type InjectSettings, type Rewriter } from './rewrite.js';
export { knownField, validField } from './header.js';
export { addressList, tokenize, unparse, unquote, LINE_LEN, type Token, type TokenType } from './rfc822.js';
export { commitMessage } from './inject.js';
export { runInject, type InjectRun } from './command.js';
