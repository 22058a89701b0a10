// Who a bounce goes to and from (docs/QMAIL.md F.5), and the bounce settings read from control (G).
import type { Control } from '../control/index.js';

export type BounceFormat = 'qsbmf' | 'dsn';

/** The settings a bounce needs, read once from a Control snapshot (they apply at restart). */
export interface BounceConfig {
  /** control/bouncefrom (default MAILER-DAEMON): local part of From:. */
  readonly bouncefrom: string;
  /** control/bouncehost (default me, else `bouncehost`). */
  readonly bouncehost: string;
  /** doublebounceto@doublebouncehost (defaults postmaster and me). */
  readonly doublebounceto: string;
  /** control/bounceformat: `qsbmf` for qmail's plain text, anything else RFC 3464. */
  readonly format: BounceFormat;
}

export function bounceConfigFrom(control: Control): BounceConfig {
  const to = control.single('doublebounceto').value ?? 'postmaster';
  const host = control.single('doublebouncehost').value ?? 'doublebouncehost';
  return {
    bouncefrom: control.single('bouncefrom').value ?? 'MAILER-DAEMON',
    bouncehost: control.single('bouncehost').value ?? 'bouncehost',
    doublebounceto: `${to}@${host}`,
    format: control.single('bounceformat').value === 'qsbmf' ? 'qsbmf' : 'dsn',
  };
}

/** `owner-@host-@[]` → `owner-@host`: a VERP request is dropped before bouncing (F.5). */
function stripVerpRequest(sender: string): string {
  return sender.endsWith('-@[]') ? sender.slice(0, -4) : sender;
}

export type BounceEnvelope =
  /** Sender non-empty: bounce from `""` to the sender (VERP suffix removed). */
  | { readonly kind: 'bounce'; readonly sender: ''; readonly recipient: string; readonly returnPath: string }
  /** Sender empty: double bounce from `#@[]` to doublebounceto@doublebouncehost. */
  | { readonly kind: 'double'; readonly sender: '#@[]'; readonly recipient: string; readonly returnPath: string }
  /** Sender `#@[]`: a failed double bounce is discarded. */
  | { readonly kind: 'triple'; readonly returnPath: string };

/** F.5: decides the bounce envelope from the original envelope sender. */
export function bounceEnvelope(originalSender: string, cfg: BounceConfig): BounceEnvelope {
  const sender = stripVerpRequest(originalSender);
  if (sender === '#@[]') return { kind: 'triple', returnPath: sender };
  if (sender === '') return { kind: 'double', sender: '#@[]', recipient: cfg.doublebounceto, returnPath: sender };
  return { kind: 'bounce', sender: '', recipient: sender, returnPath: sender };
}
