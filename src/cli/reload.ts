// After a command changed the files qmail-send reads only at start (locals, virtualdomains), SIGHUP the running quail.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { ControlName } from '../control/index.js';
import { runningPid } from '../start/index.js';

/** The routing files the running scheduler holds in memory until SIGHUP (qmail-send's rule, docs/QMAIL.md 0.1). */
const ROUTING = ['locals', 'virtualdomains'] as const satisfies readonly ControlName[];

/** A fingerprint of the routing files: device, inode, size and mtime of each (a rename or an edit changes it). */
export function routingStamp(root: string): string {
  return ROUTING.map((name) => {
    try {
      const s = statSync(join(root, 'control', name), { bigint: true });
      return `${name}:${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch {
      return `${name}:-`;
    }
  }).join(' ');
}

/**
 * When the routing files changed since `before` and quail runs for `root`, sends it SIGHUP (it re-reads them, like
 * qmail-send) and says so on stderr. Returns the pid told, or undefined. A server we may not signal is reported, not fatal.
 */
export function reloadIfChanged(root: string, before: string, who: string): number | undefined {
  if (routingStamp(root) === before) return undefined;
  const pid = runningPid(root);
  if (pid === undefined) return undefined;
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    process.stderr.write(
      `${who}: control/virtualdomains changed but quail (pid ${pid}) could not be told to reload ` +
        `(${(err as NodeJS.ErrnoException).code ?? String(err)}); send it SIGHUP yourself\n`,
    );
    return undefined;
  }
  process.stderr.write(`${who}: told the running quail (pid ${pid}) to reload control/virtualdomains\n`);
  return pid;
}
