// qmail-send's bounce text pieces (docs/QMAIL.md F.6): the greeting, one paragraph per failure.

/** One permanently failed recipient as the bounce names it. */
export interface BounceFailure {
  /** The channel address with any virtual prefix already removed (route's stripVirtualPrefix). */
  readonly address: string;
  /** The delivery report, exactly as qmail-local / qmail-remote wrote it. */
  readonly report: string;
}

/**
 * One failure paragraph, built the way qmail-send's addbounce() does: `<addr>:` (newlines in the address
 * become `_`), the report, a newline if the report lacks one, then — scanning backwards from the
 * second-to-last character — every newline that directly follows another newline becomes `/`, and
 * finally one empty line. (So runs of empty lines inside a report turn into one line of slashes.)
 */
export function failureParagraph(f: BounceFailure): string {
  let text = `<${f.address.replace(/\n/g, '_')}>:\n${f.report}`;
  if (f.report !== '' && !f.report.endsWith('\n')) text += '\n';
  const chars = text.split('');
  for (let pos = chars.length - 2; pos > 0; pos--) {
    if (chars[pos] === '\n' && chars[pos - 1] === '\n') chars[pos] = '/';
  }
  return chars.join('') + '\n';
}

/** The greeting: the normal one, or the double-bounce one (F.6). Ends with the empty line. */
function greeting(bouncehost: string, double: boolean): string {
  return double
    ? `Hi. This is the qmail-send program at ${bouncehost}.\n` +
        'I tried to deliver a bounce message to this address, but the bounce bounced!\n\n'
    : `Hi. This is the qmail-send program at ${bouncehost}.\n` +
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n" +
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n";
}

/** qmail's human text: greeting plus every failure paragraph, in the order given. */
export function humanText(bouncehost: string, double: boolean, failures: readonly BounceFailure[]): string {
  return greeting(bouncehost, double) + failures.map(failureParagraph).join('');
}

/** Strings in quail stand for bytes one char per byte (latin1) unless they hold wider characters. */
export function textBytes(text: string): Buffer {
  // eslint-disable-next-line no-control-regex
  return /^[\u0000-\u00ff]*$/.test(text) ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
}
