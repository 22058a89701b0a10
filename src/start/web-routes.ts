// The web listener's route table: routes other components add to the web admin's listener (src/web WebRoute).
import type { WebRoute } from '../web/index.js';

/**
 * Empty for now. The mailing lists (issue 19 section 3, src/lists) add their RFC 8058 one-click unsubscribe here:
 * `{ method: 'POST', path: '/unsubscribe/:token', handler }` with the handler src/lists/index.ts exports. A handler
 * runs in the web process (control/quailuser, no session): what it changes as root it must ask the parent for, as
 * the web admin's own changes do (web-service.ts).
 */
export const WEB_ROUTES: readonly WebRoute[] = [];
