// Reading standard input by descriptor: straight on (pipes) or from byte 0 again (qmail's seek_begin(0)).
import { createReadStream, readSync } from 'node:fs';
import type { Readable } from 'node:stream';

/** The rest of standard input; the descriptor stays open. */
export function readOn(fd: number): Readable {
  return createReadStream('', { fd, autoClose: false });
}

/**
 * Standard input from its first byte, by positioned reads (the descriptor's offset is not used): fails with
 * ESPIPE when it is a pipe, as seek_begin(0) does. qmail-local always gives a program the message file.
 */
export function readFromStart(fd: number): Readable {
  return createReadStream('', { fd, autoClose: false, start: 0 });
}

/** Whether standard input can be read again from byte 0 (a file, not a pipe): null if so, else the errno name. */
export function rewindError(fd: number): string | null {
  try {
    readSync(fd, Buffer.alloc(1), 0, 1, 0);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}
