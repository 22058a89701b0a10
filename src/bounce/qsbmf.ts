// qmail's own bounce format, QSBMF, byte for byte (docs/QMAIL.md F.6).
import { quoteAddress, quoteLocal, rfc5322Date } from '../core/index.js';
import type { BounceConfig } from './envelope.js';
import { humanText, type BounceFailure } from './text.js';

export interface QsbmfHead {
  readonly config: BounceConfig;
  /** Bounce recipient (the original sender, or doublebounceto@doublebouncehost). */
  readonly recipient: string;
  /** Original sender with any VERP request removed (the Return-Path of the quoted copy). */
  readonly returnPath: string;
  readonly double: boolean;
  readonly failures: readonly BounceFailure[];
  /** Unix seconds for the Date: header. */
  readonly now: number;
}

/** Everything before the original message: headers, text, separator and the Return-Path line. */
export function qsbmfHead(h: QsbmfHead): string {
  return (
    `Date: ${rfc5322Date(new Date(h.now * 1000))}\n` +
    `From: ${quoteLocal(h.config.bouncefrom)}@${h.config.bouncehost}\n` +
    `To: ${quoteAddress(h.recipient)}\n` +
    'Subject: failure notice\n' +
    '\n' +
    humanText(h.config.bouncehost, h.double, h.failures) +
    (h.double
      ? '--- Below this line is the original bounce.\n\n'
      : '--- Below this line is a copy of the message.\n\n') +
    `Return-Path: <${quoteAddress(h.returnPath)}>\n`
  );
}
