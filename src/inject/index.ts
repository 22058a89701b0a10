// inject: qmail-inject for quail: header rewriting, envelope from arguments or header, commit to the queue.
export { injectMessage, parseInjectArgv, type InjectArgs, type InjectTarget } from './inject.js';
export { runInject } from './command.js';
