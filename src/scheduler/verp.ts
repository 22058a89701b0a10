// Per-recipient envelope senders for VERP requests (docs/QMAIL.md F.7) and qmail-send's log encoding.

/**
 * `PRE@HOST-@[]` with recipient `box@dom` → `PREbox=dom@HOST` (split at the last `@` of each). A sender
 * ending in `-@[]` without an `@` before it, or a recipient without `@`, is used unchanged.
 */
export function verpSender(sender: string, recipient: string): string {
  if (!sender.endsWith('-@[]')) return sender;
  const base = sender.slice(0, -4);
  const j = base.lastIndexOf('@');
  const k = recipient.lastIndexOf('@');
  if (j < 0 || k < 0) return sender;
  return `${base.slice(0, j)}${recipient.slice(0, k)}=${recipient.slice(k + 1)}@${base.slice(j + 1)}`;
}

export { logsafe } from '../core/index.js';
