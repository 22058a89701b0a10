// Outcomes of every check and delivery: ok | temporary | permanent, with an RFC 3463 enhanced code.

/** An RFC 3463 enhanced status code such as "4.3.0" or "5.1.1". */
export type EnhancedCode = `${2 | 4 | 5}.${number}.${number}`;

export type Outcome =
  | { readonly kind: 'ok'; readonly report: string }
  | { readonly kind: 'temporary'; readonly code: EnhancedCode; readonly report: string }
  | { readonly kind: 'permanent'; readonly code: EnhancedCode; readonly report: string };

const temporary = (report: string, code?: EnhancedCode): Outcome => ({
  kind: 'temporary',
  code: code ?? codeFromReport(report, '4.3.0'),
  report,
});
const permanent = (report: string, code?: EnhancedCode): Outcome => ({
  kind: 'permanent',
  code: code ?? codeFromReport(report, '5.0.0'),
  report,
});

/** The `(#x.y.z)` code in a qmail report (the first one), or undefined when there is none. */
export function reportCode(report: string): EnhancedCode | undefined {
  const m = /\(#([245])\.(\d{1,3})\.(\d{1,3})\)/.exec(report);
  if (!m) return undefined;
  return `${Number(m[1]) as 2 | 4 | 5}.${Number(m[2])}.${Number(m[3])}`;
}

/** qmail texts end in "(#x.y.z)"; take that code when present. */
export function codeFromReport(report: string, fallback: EnhancedCode): EnhancedCode {
  return reportCode(report) ?? fallback;
}

/**
 * An error that knows whether it is temporary or permanent (qmail's 111 vs 100).
 * Unknown errors (anything that is not a QuailError) are temporary.
 */
export class QuailError extends Error {
  constructor(
    message: string,
    readonly temporary: boolean,
    readonly code: EnhancedCode = temporary ? '4.3.0' : '5.0.0',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'QuailError';
  }
  /** Exit code a qmail-style tool uses for this error. */
  get exitCode(): 100 | 111 {
    return this.temporary ? 111 : 100;
  }
}

export const tempError = (message: string, cause?: unknown): QuailError =>
  new QuailError(message, true, '4.3.0', { cause });
export const permError = (message: string, cause?: unknown): QuailError =>
  new QuailError(message, false, '5.0.0', { cause });

/** The text of anything thrown: an Error's message, else the value as a string (for logs and reports). */
export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether `err`, or an error it was caused by (up to 4 deep), is a full file system: ENOSPC or EDQUOT from the
 * system, SQLITE_FULL from SQLite. Temporary: space can come back.
 */
export function isFullDisk(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = 'code' in e ? e.code : undefined;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return true;
  }
  return false;
}

/** Turns anything thrown into an Outcome; unknown errors are temporary. */
export function outcomeFromError(err: unknown): Outcome {
  if (err instanceof QuailError)
    return err.temporary ? temporary(err.message, err.code) : permanent(err.message, err.code);
  return temporary(errText(err));
}
