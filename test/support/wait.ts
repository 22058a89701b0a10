// The one polling helper of the tests and the bench: wait until a condition holds, with a deadline (never a timing
// assertion — the deadline only ends a test that would otherwise hang, and says what it waited for).
import { connect } from 'node:net';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (sync or async) every `every` ms until it returns true or `ms` have passed; whether it held. */
export async function waitUntil(check: () => boolean | Promise<boolean>, ms: number, every = 25): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(every);
  }
  return true;
}

/**
 * Polls `check` every `every` ms until it returns true; after `ms` throws `gave up waiting after <ms> ms: <what>` (`what` is a text
 * or a function called only then, e.g. the log of the server under test).
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms = 30_000,
  what: string | (() => string) = 'the condition',
  every = 25,
): Promise<void> {
  if (await waitUntil(check, ms, every)) return;
  throw new Error(`gave up waiting after ${ms} ms: ${typeof what === 'string' ? what : what()}`);
}

/** True when something accepts a TCP connection on host:port now. */
function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((r) => {
    const c = connect(port, host, () => {
      c.destroy();
      r(true);
    });
    c.on('error', () => r(false));
  });
}

/** Waits until host:port accepts connections (a server started in another process is up). */
export function waitPort(port: number, ms: number, what: string | (() => string), host = '127.0.0.1'): Promise<void> {
  return waitFor(() => accepts(port, host), ms, what);
}
