// QMAILQUEUE: the interface through which a session hands its message to a qmail-queue-compatible program.
import type { Readable } from 'node:stream';
import type { SessionEnv } from './policy.js';

/**
 * Runs PROGRAM the qmail-queue way (message on fd 0, envelope on fd 1) with the session's environment, and
 * resolves with a reference for the 250 reply (qmail's `qp <pid>`) once it exited 0; rejects with a QuailError
 * (permanent: 554, temporary or unknown: 451). smtpd does not know how: src/start fills it in with src/filter.
 */
export interface QueueFilter {
  run(
    program: string,
    m: { readonly sender: string; readonly recipients: readonly string[]; readonly data: Readable },
    env: SessionEnv,
  ): Promise<string>;
}
