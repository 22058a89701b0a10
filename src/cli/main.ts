#!/usr/bin/env node
// quail: the admin command. Before its code is loaded, the limit on open files is checked: Node's module loader opens
// many files at once, and under a tiny limit (ulimit -n 24) it failed with a raw EMFILE stack trace. So this file
// imports only that check (the one module of src/tcpserver, which reads the limit for the listeners too).
import { MIN_OPEN_FILES, openFilesLimit, RAISE_OPEN_FILES } from '../tcpserver/descriptors.js';

const limit = openFilesLimit();
if (limit !== undefined && limit < MIN_OPEN_FILES) {
  process.stderr.write(
    `quail: fatal: the limit on open files (RLIMIT_NOFILE) is ${limit}, quail needs at least ${MIN_OPEN_FILES}: ` +
      `${RAISE_OPEN_FILES}\n`,
  );
  process.exit(111);
}
await import('./run.js');
