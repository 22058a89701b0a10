// The table of tools: name → implementation, in the order the README lists them.
import { bouncesaying, condredirect, except, forward } from './conditional.js';
import { datemail, mailsubj, qreceipt } from './compose.js';
import type { ToolIo } from './io.js';
import { maildir2mbox, maildirwatch } from './maildir.js';
import { preline } from './preline.js';

export const TOOLS = [
  'preline',
  'condredirect',
  'bouncesaying',
  'except',
  'forward',
  'datemail',
  'mailsubj',
  'qreceipt',
  'maildir2mbox',
  'maildirwatch',
] as const;

export type ToolName = (typeof TOOLS)[number];

/** Runs one tool to its exit code. `terminal`: standard output is a terminal (maildirwatch then loops). */
export function runTool(name: ToolName, io: ToolIo, terminal = false): Promise<number> {
  switch (name) {
    case 'preline':
      return preline(io);
    case 'condredirect':
      return condredirect(io);
    case 'bouncesaying':
      return bouncesaying(io);
    case 'except':
      return except(io);
    case 'forward':
      return forward(io);
    case 'datemail':
      return datemail(io);
    case 'mailsubj':
      return mailsubj(io);
    case 'qreceipt':
      return qreceipt(io);
    case 'maildir2mbox':
      return maildir2mbox(io);
    case 'maildirwatch':
      return maildirwatch(io, { loop: terminal });
  }
}
