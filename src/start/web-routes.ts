// The web listener's route table: routes other components add to the web admin's listener (src/web WebRoute).
import { chooseWriter, ONE_CLICK_PREFIX, oneClickUnsubscribe } from '../lists/index.js';
import type { WebRoute } from '../web/index.js';

/**
 * The mailing lists' RFC 8058 one-click unsubscribe (src/lists): `POST /lists/unsubscribe/...` with
 * `List-Unsubscribe=One-Click`. It runs in the web process (control/quailuser, no session): the change is asked of
 * the root parent over run/lists.sock (chooseWriter), which checks the list's cookie before it writes the directory.
 */
export function webRoutes(root: string): readonly WebRoute[] {
  return [
    {
      method: 'POST',
      path: `${ONE_CLICK_PREFIX}*`,
      handler: async (req) => {
        // the app's body limit (src/web) has already refused a large body
        const body = await req.text();
        let writer;
        try {
          writer = await chooseWriter(root);
        } catch {
          return new Response('the list directory cannot be reached now; try again later\n', { status: 503 });
        }
        try {
          const a = await oneClickUnsubscribe(writer, new URL(req.url).pathname, body);
          return new Response(`${a.text}\n`, { status: a.status, headers: { 'content-type': 'text/plain' } });
        } finally {
          await writer.close();
        }
      },
    },
  ];
}
