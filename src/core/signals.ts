// Signals Node.js would act on by itself in a long-lived quail process.

/**
 * Node.js starts its inspector (a debugger on 127.0.0.1:9229 that runs any code it is sent) when a process gets
 * SIGUSR1 and nothing listens for it; in quail's supervisor that would give every local user a way to run code as
 * root, and in a delivery worker as the mailbox's uid (a `.qmail` program of that uid can signal its worker). SIGUSR2's
 * default ends the process. Every quail process calls this first: both are ignored, `told` (if given) hears of each.
 */
export function ignoreUserSignals(told?: (signal: 'SIGUSR1' | 'SIGUSR2') => void): void {
  for (const sig of ['SIGUSR1', 'SIGUSR2'] as const) {
    process.removeAllListeners(sig);
    process.on(sig, () => told?.(sig));
  }
}
