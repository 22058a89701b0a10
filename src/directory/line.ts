// Recognising a `.qmail-default` program line that hands delivery to vdeliver (so local can run it in-process).

/**
 * `| quail vdeliver '' POLICY` (also `vdelivermail` or a path ending in /quail, the '' optional) → the policy
 * word ('' when absent); null when the line is anything else.
 */
export function parseVdeliverLine(line: string): { policy: string } | null {
  const m = /^\|\s*(?:\S*\/)?(?:quail\s+vdeliver|vdelivermail)(?:\s+(?:''|""))?(?:\s+(\S+))?\s*$/.exec(line.trim());
  if (!m) return null;
  return { policy: m[1] ?? '' };
}
