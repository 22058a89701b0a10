// Builds the plain RouteControl snapshot from a Control (docs/QMAIL.md A, G): locals, percenthack, virtualdomains.
import { asciiLower, QuailError } from '../core/index.js';
import type { Control } from '../control/index.js';
import type { RouteControl } from './types.js';

/** 1-based line of each list entry (0.2 rules), lowercased; the first line of a duplicate wins. */
function entryLines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, idx) => {
    const l = raw.replace(/[ \t]+$/, '');
    if (l === '' || l.startsWith('#')) return;
    const key = asciiLower(l);
    if (!out.has(key)) out.set(key, idx + 1);
  });
  return out;
}

/**
 * Reads what routing needs. Throws ControlReadError (temporary) for an unreadable file, and a temporary
 * QuailError when neither control/locals nor control/me exists (qmail-send refuses to start, loc-020).
 */
export function routeControlFrom(control: Control): RouteControl {
  const locals = control.list('locals');
  if (locals.value === null) {
    throw new QuailError(
      'unable to read controls: neither control/locals nor control/me exists (run `quail init` or create control/me)',
      true,
    );
  }
  const localsRaw = control.raw('locals');
  const localsSource =
    localsRaw === null
      ? { file: 'me' as const, lines: new Map(locals.value.map((d) => [asciiLower(d), 1] as const)) }
      : { file: 'locals' as const, lines: entryLines(localsRaw) };
  const envnoathost = control.single('envnoathost').value ?? 'envnoathost';
  const percenthack = control.list('percenthack').value ?? [];
  const vd = control.map('virtualdomains').value;
  return {
    envnoathost,
    locals: new Set(locals.value.map(asciiLower)),
    percenthack: new Set(percenthack.map(asciiLower)),
    virtualdomains: vd ?? new Map(),
    localsSource,
    me: control.single('me').value,
  };
}
