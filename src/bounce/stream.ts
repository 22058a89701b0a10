// Streams the queued message into a bounce without buffering it whole (STYLE.md habit 6).
import { createReadStream } from 'node:fs';

/** Yields the message file as it is, chunk by chunk. */
export async function* wholeFile(path: string): AsyncGenerator<Buffer> {
  for await (const chunk of createReadStream(path)) yield chunk as Buffer;
}

/**
 * Yields only the header of the message file: everything up to and including the first empty line
 * (or the whole file when it has no body). Used for text/rfc822-headers in large DSNs.
 */
export async function* headerOfFile(path: string): AsyncGenerator<Buffer> {
  let prev = 0x0a; // a message starting with "\n" has an empty header
  for await (const raw of createReadStream(path)) {
    const chunk = raw as Buffer;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 0x0a && prev === 0x0a) {
        yield chunk.subarray(0, i + 1);
        return;
      }
      prev = c ?? 0;
    }
    yield chunk;
  }
}
