// What the inbound checks are shown of a message's signatures: a bounded number, each of a bounded size (RFC 6376 6.1
// lets a verifier limit the signatures it checks; OpenDKIM's MaximumSignaturesToVerify is the same idea).
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The limits. Past them a signature is not shown to the checker (as if the message did not carry it):
 * - each DKIM-Signature makes the checker hash the whole body once per distinct `l=`, so 3,000 of them with 3,000
 *   lengths cost 3,000 passes over the body (a 2 MB body took 38 s, and the process grew by 500 MB);
 * - the checker finds each name of a signature's `h=` by scanning the header from its end, so a long `h=` against
 *   many short fields is quadratic, in one synchronous loop (100,000 names against 40,000 fields froze the SMTP
 *   process for 13.6 s).
 * Real mail carries one to four signatures, each naming a few dozen fields, in a header of at most a few hundred.
 */
export const SCREEN_LIMITS = {
  /** DKIM-Signature fields checked, counted from the top (the newest first). */
  dkimSignatures: 5,
  /** Field names in one signature's `h=` (DKIM-Signature and ARC-Message-Signature). */
  signedFields: 100,
  /** Header fields: a header with more has no signature checked at all (DKIM and ARC both `none`). */
  fields: 1000,
  /** The part of the header that is screened; the rest passes as it is (the SMTP session refuses past 1 MiB). */
  headerBytes: 4 << 20,
} as const;

const SIGNATURES = new Set(['dkim-signature', 'arc-seal', 'arc-message-signature', 'arc-authentication-results']);

/** How many names a signature field's `h=` tag lists (0 without one). Linear in the field's length. */
function signedCount(field: string): number {
  const colon = field.indexOf(':');
  for (const tag of field.slice(colon + 1).split(';')) {
    const eq = tag.indexOf('=');
    if (eq < 0 || tag.slice(0, eq).trim().toLowerCase() !== 'h') continue;
    let n = 1;
    for (let i = eq + 1; i < tag.length; i++) if (tag.charCodeAt(i) === 0x3a) n++;
    return n;
  }
  return 0;
}

/** A header section (LF line ends, without the blank line) with the signatures past the limits taken out. */
export function screenHeader(header: string): { header: string; dropped: number } {
  // Fields: a line that does not start with a space or a tab starts one (RFC 5322 2.2.3).
  const fields: string[] = [];
  let start = 0;
  for (let i = header.indexOf('\n'); i >= 0; i = header.indexOf('\n', i + 1)) {
    const next = header.charCodeAt(i + 1);
    if (next !== 0x20 && next !== 0x09) {
      fields.push(header.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < header.length) fields.push(header.slice(start));
  const all = fields.length > SCREEN_LIMITS.fields;
  let dkim = 0;
  let dropped = 0;
  const kept = fields.filter((f) => {
    const name = f
      .slice(0, Math.max(0, f.indexOf(':')))
      .trim()
      .toLowerCase();
    if (!SIGNATURES.has(name)) return true;
    let keep = !all;
    if (keep && name === 'dkim-signature') keep = ++dkim <= SCREEN_LIMITS.dkimSignatures;
    if (keep && (name === 'dkim-signature' || name === 'arc-message-signature'))
      keep = signedCount(f) <= SCREEN_LIMITS.signedFields;
    if (!keep) dropped++;
    return keep;
  });
  return dropped === 0 ? { header, dropped } : { header: kept.join(''), dropped };
}

/**
 * A stream of the message (LF line ends) with its header screened: the header is held until its end (the blank
 * line, or SCREEN_LIMITS.headerBytes), then given on screened; the body passes untouched. `dropped` counts the
 * signatures taken out.
 */
export class ScreenSignatures extends Transform {
  private held: string | undefined = '';
  dropped = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.held === undefined) return done(null, chunk);
    const from = Math.max(0, this.held.length - 1);
    this.held += chunk.toString('latin1');
    const blank = this.held.startsWith('\n') ? 0 : this.held.indexOf('\n\n', from);
    if (blank >= 0) return done(null, this.release(blank === 0 ? 0 : blank + 1));
    if (this.held.length > SCREEN_LIMITS.headerBytes) return done(null, this.release(this.held.length));
    done();
  }

  override _flush(done: TransformCallback): void {
    done(null, this.held === undefined ? undefined : this.release(this.held.length));
  }

  /** Screens the held text's first `end` characters (the header) and gives it on with what follows. */
  private release(end: number): Buffer {
    const held = this.held ?? '';
    this.held = undefined;
    const s = screenHeader(held.slice(0, end));
    this.dropped += s.dropped;
    return Buffer.from(s.header + held.slice(end), 'latin1');
  }
}
