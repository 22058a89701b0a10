// Which handler runs which scenario kind. A kind without a handler is reported as SKIP.
import type { KindHandler } from '../types.js';
import { getpwKind } from './getpw.js';
import { newuKind } from './newu.js';
import { injectKind } from './inject.js';
import { smtpKind } from './smtp.js';
import { localDryrunKind } from './local-dryrun.js';
import { deliveryKind } from './delivery.js';

export const KINDS: Readonly<Record<string, KindHandler | undefined>> = {
  newu: newuKind,
  getpw: getpwKind,
  inject: injectKind,
  smtp: smtpKind,
  'local-dryrun': localDryrunKind,
  delivery: deliveryKind,
  // one line each: 'local-dryrun', delivery, smtp, inject
};
