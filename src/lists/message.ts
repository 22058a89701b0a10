// A message as the list programs see it: header fields (unfolded for reading, kept raw for writing) and the body.

export interface Field {
  /** Lowercase name. */
  readonly name: string;
  /** The field as it came, continuation lines included, ending in `\n`. */
  readonly raw: string;
}

export interface Parsed {
  readonly fields: Field[];
  /** Everything after the blank line (or empty). */
  readonly body: Buffer;
}

/** Splits a message (LF line ends) into header fields and body; lines that are not fields are kept as they are. */
export function parseMessage(data: Buffer): Parsed {
  const text = data.toString('latin1');
  let end = text.startsWith('\n') ? 0 : text.indexOf('\n\n');
  const headerText = end < 0 ? text : text.slice(0, end + (end === 0 ? 0 : 1));
  const bodyStart = end < 0 ? data.length : end + (end === 0 ? 1 : 2);
  if (end < 0) end = text.length;
  const fields: Field[] = [];
  for (const line of headerText.split('\n')) {
    if (line === '') continue;
    const last = fields.at(-1);
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      fields[fields.length - 1] = { name: last.name, raw: `${last.raw}${line}\n` };
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
    fields.push({ name, raw: `${line}\n` });
  }
  return { fields, body: data.subarray(bodyStart) };
}

/** A field's value, unfolded and trimmed. */
export const valueOf = (f: Field): string =>
  f.raw
    .slice(f.raw.indexOf(':') + 1)
    .replace(/\r?\n[ \t]+/g, ' ')
    .trim();

/** The first field of that name's value, or null. */
export function fieldValue(p: Parsed, name: string): string | null {
  const f = p.fields.find((x) => x.name === name);
  return f ? valueOf(f) : null;
}

/** The message again: fields, blank line, body. */
export function unparse(fields: readonly string[], body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${fields.join('')}\n`, 'latin1'), body]);
}

/** Text safe for one header line: control characters out, at most `max` characters. */
// eslint-disable-next-line no-control-regex -- control characters are what is removed
export const oneLine = (s: string, max = 200): string => s.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, max);
