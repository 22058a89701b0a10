// Which handler runs which scenario kind. A kind without a handler is reported as SKIP.
import type { KindHandler } from '../types.js';

export const KINDS: Readonly<Record<string, KindHandler | undefined>> = {
  // newu: (filled by the users work), getpw, 'local-dryrun', delivery, smtp, inject
};
