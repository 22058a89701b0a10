// The supervisor's list writer: run/lists.sock, where list programs (as a domain's account) ask for directory changes.
import { errText } from '../core/index.js';
import { Control } from '../control/index.js';
import { KeptDirectory, openDirectory } from '../directory/index.js';
import { applyWriteRequest, bounceRule, listSocketPath, serveListSocket, type ListWriter } from '../lists/index.js';
import type { EventLog } from './log.js';

export interface ListWriterService {
  close(): Promise<void>;
}

/**
 * As root: serves run/lists.sock (mode 0660, group `gid`) with a directory opened read-write on first use, as
 * the POP3 last-login times are written here. Every request is checked by src/lists (the cookie, the list, the
 * address) before anything is written; each change is logged as `lists.change`.
 */
export async function startListWriter(root: string, gid: number, log: EventLog): Promise<ListWriterService> {
  const dir = new KeptDirectory(() => openDirectory({ root }));
  const writer: ListWriter = {
    async apply(req) {
      try {
        return await applyWriteRequest((await dir.get()).lists, req, Date.now(), bounceRule(new Control(root)));
      } catch (err) {
        await dir.drop(); // closed, and opened afresh for the next request
        return { ok: false, permanent: false, text: errText(err) };
      }
    },
    close: () => dir.close(),
  };
  const server = await serveListSocket(listSocketPath(root), writer, gid, (req, a) =>
    log.event(a.ok ? 'lists.change' : 'lists.refused', {
      list: `${req.list}@${req.domain}`,
      op: req.op,
      address: req.address,
      ...(a.ok ? { outcome: a.outcome } : { error: a.text }),
    }),
  );
  return {
    close: async () => {
      await server.close();
      await writer.close();
    },
  };
}
