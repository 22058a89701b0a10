// Which handler runs which scenario kind. A kind without a handler is reported as SKIP.
import type { KindHandler } from '../types.js';
import { injectKind } from './inject.js';

export const KINDS: Readonly<Record<string, KindHandler | undefined>> = {
  inject: injectKind,
  // newu: (filled by the users work), getpw, 'local-dryrun', delivery, smtp, inject
};
